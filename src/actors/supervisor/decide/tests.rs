//! The decisions, fed states and events as the log would hold them.

use super::*;
use crate::store::events::Event;
use serde_json::{json, Value};

/// A goal's state and its decider, fed events as the log would hold them.
struct Goal {
    state: GoalState,
    decider: Decider,
    seq: u64,
}

impl Goal {
    /// Slices `(id, depends_on)`, run `concurrency` at a time, with one
    /// gate for slices and the integration, and `limits` merged in.
    fn new(slices: &[(&str, &[&str])], concurrency: usize, limits: Value) -> Goal {
        let slices: Vec<Value> = slices
            .iter()
            .map(|(id, deps)| {
                json!({"id": id, "prompt": "p", "write_scope": [format!("{id}/**")], "depends_on": deps})
            })
            .collect();
        let mut all_limits =
            json!({"slice_timeout_ms": 1000, "inactivity_timeout_ms": 1000, "gate_concurrency": 1});
        let mut max_attempts = json!(1);
        for (k, v) in limits.as_object().unwrap() {
            match k.as_str() {
                "max_attempts" => max_attempts = v.clone(),
                _ => all_limits[k] = v.clone(),
            }
        }
        let mut goal = Goal {
            state: GoalState::default(),
            decider: Decider::new(),
            seq: 0,
        };
        let _ = goal.feed(
            json!({"kind": "goal_started", "goal_id": "g", "goal": "goal",
            "repository": "/r", "base_commit": "base", "base_tree": "t0", "base_ref": null,
            "integration_branch": "omk/g/integration", "plan": {"slices": slices},
            "agent": "exec:true",
            "gates": [{"name": "test", "command": "true", "timeout": 1000, "scope": "both"}],
            "allow_no_gates": false, "max_attempts": max_attempts, "concurrency": concurrency,
            "deliver": "branch", "limits": all_limits}),
        );
        goal
    }

    /// Records one event (`kind` and fields) and returns what follows it.
    fn feed(&mut self, mut body: Value) -> Vec<Action> {
        self.seq += 1;
        body["seq"] = json!(self.seq);
        body["ts"] = json!("2026-12-02T00:00:00Z");
        let event: Event = serde_json::from_value(body).unwrap();
        self.state.apply(&event);
        self.decider.on_event(&self.state, &event.body)
    }

    fn next(&mut self) -> Vec<Action> {
        self.decider.next(&self.state)
    }

    fn started(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "slice_started", "slice": slice, "attempt": 1,
            "start_commit": "base", "branch": format!("omk/g/{slice}"), "worktree": "/pool/slot"}),
        )
    }

    fn committed(&mut self, slice: &str) -> Vec<Action> {
        self.committed_files(slice, &[&format!("{slice}/f")])
    }

    fn committed_files(&mut self, slice: &str, files: &[&str]) -> Vec<Action> {
        self.feed(
            json!({"kind": "slice_committed", "slice": slice, "attempt": 1,
            "commit": format!("c-{slice}"), "tree": format!("t-{slice}"), "changed_files": files}),
        )
    }

    fn deferred(&mut self, slice: &str, behind: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "gates_deferred", "slice": slice, "attempt": 1,
            "behind": behind, "paths": ["shared.txt"]}),
        )
    }

    fn verified(&mut self, slice: Option<&str>, passed: bool) -> Vec<Action> {
        self.feed(json!({"kind": "verified", "slice": slice, "passed": passed}))
    }

    fn merged(&mut self, slice: &str) -> Vec<Action> {
        self.feed(json!({"kind": "slice_merged", "slice": slice, "attempt": 1,
            "slice_commit": format!("c-{slice}"), "commit": format!("m-{slice}"), "tree": format!("mt-{slice}")}))
    }

    /// The integration gates start on slice `slice`'s merge.
    fn testing(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "integration_started", "commit": format!("m-{slice}"),
            "tree": format!("mt-{slice}"), "worktree": "/pool/int"}),
        )
    }

    fn integration_gate(&mut self, slice: &str, passed: bool) -> Vec<Action> {
        self.feed(
            json!({"kind": "gate_finished", "result": {"name": "test", "passed": passed,
            "exit_code": if passed { 0 } else { 1 }, "outcome": "exit", "duration_ms": 1,
            "tree": format!("mt-{slice}"), "log": "/l"}}),
        )
    }

    fn advanced(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "integration_advanced", "commit": format!("m-{slice}"),
            "tree": format!("mt-{slice}")}),
        )
    }

    fn failed(&mut self, slice: &str) -> Vec<Action> {
        self.feed(json!({"kind": "slice_failed", "slice": slice, "attempt": 1,
            "status": "failed", "reason": "agent failed: exit 1", "paths": []}))
    }
}

/// A first attempt, from the base.
fn start(slice: &str) -> Action {
    start_from(slice, "base")
}

fn start_from(slice: &str, commit: &str) -> Action {
    Action::Start {
        slice: slice.into(),
        start_commit: commit.into(),
        work_from: None,
    }
}

fn stop(slice: &str) -> Action {
    Action::StopAttempt {
        slice: slice.into(),
    }
}

fn integrate(slice: &str) -> Action {
    Action::Integrate {
        commit: format!("m-{slice}"),
        tree: format!("mt-{slice}"),
        priority: Priority::Candidate,
    }
}

fn advance(slice: &str) -> Action {
    Action::Advance {
        commit: format!("m-{slice}"),
        tree: format!("mt-{slice}"),
    }
}

/// Gates for a slice no other waits for.
fn gate(slice: &str, ahead: &[&str]) -> Action {
    Action::Gate {
        slice: slice.into(),
        ahead: ahead.iter().map(|a| a.to_string()).collect(),
        priority: Priority::Other,
    }
}

fn release(slice: &str) -> Action {
    Action::Release {
        slice: slice.into(),
    }
}

#[test]
fn slices_start_in_dependency_order_within_the_concurrency_limit() {
    let mut g = Goal::new(&[("a", &[]), ("b", &["a"]), ("c", &[])], 1, json!({}));
    assert_eq!(g.next(), [start("a")]);
    assert_eq!(g.started("a"), []);
    assert_eq!(g.next(), [], "one at a time");
    // A committed slice goes to its gates, and frees its place; `b`
    // waits for it, so its gates go first.
    assert_eq!(
        g.committed("a"),
        [
            stop("a"),
            Action::Gate {
                slice: "a".into(),
                ahead: vec![],
                priority: Priority::Critical
            }
        ]
    );
    assert_eq!(g.next(), [start("c")], "`b` waits for `a` to merge");
    assert_eq!(g.started("c"), []);
    assert_eq!(
        g.verified(Some("a"), true),
        [stop("a"), Action::Merge { slice: "a".into() }, release("a")]
    );
    assert_eq!(g.next(), []);
    assert_eq!(g.merged("a"), [release("a")]);
    assert_eq!(g.next(), [integrate("a")], "judged while `c` works");
    let _ = g.testing("a");
    let _ = g.integration_gate("a", true);
    let _ = g.verified(None, true);
    assert_eq!(g.next(), [advance("a")]);
    let _ = g.advanced("a");
    assert_eq!(g.next(), [], "`c` still holds the only place");
    assert_eq!(g.failed("c"), [stop("c"), release("c")]);
    assert_eq!(g.next(), [start_from("b", "m-a")]);
}

#[test]
fn a_slice_whose_dependency_failed_is_blocked_and_the_goal_ends_not_ready() {
    let mut g = Goal::new(&[("a", &[]), ("b", &["a"]), ("c", &["b"])], 4, json!({}));
    assert_eq!(g.next(), [start("a")]);
    let _ = g.started("a");
    let _ = g.failed("a");
    let actions = g.next();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(
        actions[0],
        Action::Block {
            slice: "b".into(),
            reason: "dependency `a` did not merge (failed)".into()
        }
    );
    assert!(matches!(&actions[1], Action::Block { slice, .. } if slice == "c"));
    let Action::Finish { status, reason } = &actions[2] else {
        panic!("{actions:?}");
    };
    assert_eq!(*status, GoalStatus::NotReady);
    assert!(reason.as_deref().unwrap().contains("b (blocked by a)"));
    assert_eq!(g.decider.phase(), &Phase::Done);
    assert_eq!(g.next(), [], "a finished goal decides nothing more");
}

#[test]
fn a_merge_is_judged_on_the_candidate_and_the_branch_moves_only_once_it_passed() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    let _ = g.merged("a");
    assert_eq!(g.next(), [integrate("a")]);
    let _ = g.testing("a");
    assert_eq!(g.next(), [], "the candidate is judged once");
    let _ = g.integration_gate("a", true);
    assert_eq!(g.verified(None, true), []);
    assert_eq!(g.state.integration.order, Vec::<String>::new());
    assert_eq!(g.next(), [advance("a")]);
    assert_eq!(g.next(), [], "the branch is moved once");
    let _ = g.advanced("a");
    assert_eq!(g.state.integration.order, ["a"]);
    assert_eq!(
        g.next(),
        [Action::Finish {
            status: GoalStatus::Ready,
            reason: None
        }]
    );
}

#[test]
fn without_integration_gates_every_merge_moves_the_branch() {
    let mut g = Goal::new(&[("a", &[]), ("b", &["a"])], 1, json!({}));
    g.state.settings.gates[0].scope = crate::gate::GateScope::Slice;
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    let _ = g.merged("a");
    assert_eq!(g.next(), [advance("a")], "`b` waits for `a` on the branch");
    let _ = g.advanced("a");
    // A dependent slice starts from what its dependency made.
    assert_eq!(g.next(), [start_from("b", "m-a")]);
}

#[test]
fn a_failed_candidate_is_bisected_to_the_first_failing_merge_which_is_taken_out() {
    let mut g = Goal::new(
        &[("a", &[]), ("b", &[]), ("c", &[])],
        3,
        json!({"max_attempts": 2}),
    );
    let _ = g.next();
    for s in ["a", "b", "c"] {
        let _ = g.started(s);
        let _ = g.committed(s);
        let _ = g.verified(Some(s), true);
    }
    let _ = g.merged("a");
    let _ = g.feed(json!({"kind": "slice_merged", "slice": "b", "attempt": 1,
        "slice_commit": "c-b", "commit": "m-b", "tree": "mt-b", "onto": "m-a"}));
    let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
        "slice_commit": "c-c", "commit": "m-c", "tree": "mt-c", "onto": "m-b"}));
    // The whole batch at once: its tip fails.
    assert_eq!(g.next(), [integrate("c")]);
    let _ = g.testing("c");
    let _ = g.integration_gate("c", false);
    let _ = g.verified(None, false);
    // Between the branch (passing) and `c` (failing): `b` first.
    assert_eq!(g.next(), [integrate("b")]);
    let _ = g.testing("b");
    let _ = g.integration_gate("b", false);
    let _ = g.verified(None, false);
    assert_eq!(g.next(), [integrate("a")]);
    let _ = g.testing("a");
    let _ = g.integration_gate("a", true);
    let _ = g.verified(None, true);
    // `b` is the first failing merge: `a` goes to the branch, `b` out, `c` again.
    let eject = Action::Eject {
        slice: "b".into(),
        gate: "test".into(),
        tree: "mt-b".into(),
        onto: "m-a".into(),
        remerge: vec!["c".into()],
    };
    assert_eq!(g.next(), [advance("a"), eject]);
    let after = g.feed(json!({"kind": "slice_ejected", "slice": "b", "attempt": 1,
        "gate": "test", "tree": "mt-b", "onto": "m-a", "remerge": ["c"]}));
    assert_eq!(
        after,
        [
            Action::Merge { slice: "c".into() },
            Action::Retry {
                slice: "b".into(),
                cause: RetryCause::Integration {
                    gate: "test".into(),
                    tree: "mt-b".into()
                },
                redo: Redo::OnTheIntegration
            }
        ]
    );
    let b = g.state.slice("b").unwrap();
    assert_eq!(b.status, SliceStatus::GateFailed);
    assert!(b
        .reason
        .as_deref()
        .unwrap()
        .contains("integration gate `test`"));
    assert_eq!(g.state.slice("c").unwrap().status, SliceStatus::Merging);
    // `c`'s merge onto the old candidate arrives late: it changes nothing.
    let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
        "slice_commit": "c-c", "commit": "m-c2", "tree": "mt-c2", "onto": "m-b"}));
    assert_eq!(g.state.slice("c").unwrap().status, SliceStatus::Merging);
    let _ = g.advanced("a");
    let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
        "slice_commit": "c-c", "commit": "m-c3", "tree": "mt-c3", "onto": "m-a"}));
    assert_eq!(g.state.integration.order, ["a"]);
    let tips: Vec<&str> = g
        .state
        .integration
        .candidate
        .iter()
        .map(|l| l.commit.as_str())
        .collect();
    assert_eq!(tips, ["m-c3"]);
}

#[test]
fn a_culprit_without_attempts_left_stays_out_and_the_goal_ends_not_ready() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    let _ = g.merged("a");
    let _ = g.next();
    let _ = g.testing("a");
    let _ = g.integration_gate("a", false);
    let _ = g.verified(None, false);
    let [Action::Eject { slice, onto, .. }] = &g.next()[..] else {
        panic!("no ejection");
    };
    assert_eq!((slice.as_str(), onto.as_str()), ("a", "base"));
    let after = g.feed(json!({"kind": "slice_ejected", "slice": "a", "attempt": 1,
        "gate": "test", "tree": "mt-a", "onto": "base"}));
    assert_eq!(after, [], "one attempt only");
    let Some(Action::Finish { status, reason }) = g.next().pop() else {
        panic!("the goal did not end");
    };
    assert_eq!(status, GoalStatus::NotReady);
    assert!(reason.unwrap().contains("a (gate_failed)"));
}

#[test]
fn a_cancel_stops_new_work_and_ends_the_goal_cancelled_once_nothing_runs() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
    assert_eq!(g.next(), [], "`b` does not start; `a` still runs");
    let _ = g.feed(json!({"kind": "slice_failed", "slice": "a", "attempt": 1,
        "status": "cancelled", "reason": "agent failed: cancelled", "paths": []}));
    assert_eq!(
        g.next(),
        [Action::Finish {
            status: GoalStatus::Cancelled,
            reason: Some("cancelled before every slice finished".into())
        }]
    );
}

#[test]
fn an_agent_that_touched_the_checkout_halts_the_goal_as_failed() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.started("b");
    let actions = g.feed(
        json!({"kind": "checkout_touched", "slice": "a", "attempt": 1,
        "evidence": ["HEAD moved"]}),
    );
    assert_eq!(actions[..2], [Action::CancelAll, stop("a")]);
    // The first reason to halt is the one the goal ends with.
    assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
    let _ = g.failed("b");
    let Some(Action::Finish { status, reason }) = g.next().pop() else {
        panic!("the goal did not end");
    };
    assert_eq!(status, GoalStatus::Failed);
    assert!(reason
        .unwrap()
        .contains("slice `a` changed the user's repository (HEAD moved)"));
}

#[test]
fn running_usage_spends_a_token_budget_once() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 1, json!({"budget_tokens": 100}));
    let _ = g.next();
    let _ = g.started("a");
    let usage = |n: u64| {
        json!({"kind": "agent_update", "slice": "a", "attempt": 1,
            "update": {"type": "usage", "tokens_in": n, "tokens_out": 0}})
    };
    assert_eq!(g.feed(usage(60)), []);
    let exhausted = Action::Exhaust {
        reason: "the token budget of 100 is spent (120 tokens)".into(),
    };
    assert_eq!(g.feed(usage(120)), [exhausted]);
    let _ = g.feed(json!({"kind": "budget_exhausted", "reason": "tokens"}));
    assert_eq!(g.feed(usage(130)), [], "once");
    let _ = g.failed("a");
    let Some(Action::Finish { status, .. }) = g.next().pop() else {
        panic!("the goal did not end");
    };
    assert_eq!(status, GoalStatus::NeedsBudget, "`b` never started");
}

#[test]
fn a_resumed_goal_sends_committed_and_verified_slices_on() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 3, json!({}));
    let _ = g.next();
    for s in ["a", "b", "c"] {
        let _ = g.started(s);
    }
    let _ = g.committed("a");
    let _ = g.committed("b");
    let _ = g.verified(Some("b"), true);
    let mut resumed = Decider::new();
    assert_eq!(
        resumed.on_resume(&g.state),
        [gate("a", &[]), Action::Merge { slice: "b".into() }]
    );
}

#[test]
fn a_resumed_goal_gives_the_retry_its_last_controller_did_not_record() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({"max_attempts": 2}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.feed(json!({"kind": "gate_finished", "slice": "a", "result": {"name": "test",
        "passed": false, "exit_code": 1, "outcome": "exit 1", "duration_ms": 1, "tree": "t-a", "log": "/l"}}));
    // Killed after the verdict, before `slice_retrying`.
    let _ = g.verified(Some("a"), false);
    let _ = g.feed(json!({"kind": "goal_resumed", "pid": 1}));
    let mut resumed = Decider::new();
    assert_eq!(
        resumed.on_resume(&g.state),
        [Action::Retry {
            slice: "a".into(),
            cause: RetryCause::Gate {
                gate: "test".into()
            },
            redo: Redo::ItsCommit
        }]
    );
}

#[test]
fn a_failed_gate_a_refused_commit_or_a_conflict_is_retried_while_attempts_remain() {
    let mut g = Goal::new(
        &[("a", &[]), ("b", &[]), ("c", &[])],
        3,
        json!({"max_attempts": 2}),
    );
    let _ = g.next();
    for s in ["a", "b", "c"] {
        let _ = g.started(s);
    }
    let _ = g.committed("a");
    let _ = g.feed(json!({"kind": "gate_finished", "slice": "a", "result": {"name": "test",
        "passed": false, "exit_code": 1, "outcome": "exit 1", "duration_ms": 1, "tree": "t-a", "log": "/l"}}));
    let gate = RetryCause::Gate {
        gate: "test".into(),
    };
    assert_eq!(
        g.verified(Some("a"), false),
        [
            stop("a"),
            Action::Retry {
                slice: "a".into(),
                cause: gate,
                redo: Redo::ItsCommit
            },
            release("a")
        ]
    );
    let refused = g.feed(json!({"kind": "slice_failed", "slice": "b", "attempt": 1,
        "status": "scope_violation", "reason": "changed 1 path outside its write scope: x", "paths": ["x"]}));
    assert!(refused.contains(&Action::Retry {
        slice: "b".into(),
        cause: RetryCause::Scope,
        redo: Redo::ItsCommit
    }));
    let _ = g.committed("c");
    let _ = g.verified(Some("c"), true);
    let conflict =
        g.feed(json!({"kind": "merge_conflict", "slice": "c", "attempt": 1, "paths": ["x"]}));
    assert!(conflict.contains(&Action::Retry {
        slice: "c".into(),
        cause: RetryCause::Conflict,
        redo: Redo::OnTheIntegration
    }));
    // Its second attempt fails too, and that was the last.
    let _ = g.feed(json!({"kind": "slice_retrying", "slice": "a", "attempt": 1,
        "cause": {"type": "gate", "gate": "test"}, "feedback": "f", "work_from": "c-a"}));
    assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Pending);
    let _ = g.feed(json!({"kind": "slice_started", "slice": "a", "attempt": 2,
        "start_commit": "base", "branch": "omk/g/a", "worktree": "/pool/slot", "work_from": "c-a"}));
    let failed = g.feed(json!({"kind": "slice_failed", "slice": "a", "attempt": 2,
        "status": "scope_violation", "reason": "again", "paths": []}));
    assert!(
        !failed.iter().any(|a| matches!(a, Action::Retry { .. })),
        "no attempts left: {failed:?}"
    );
}

#[test]
fn gates_stopped_by_a_cancel_are_no_verdict() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({"max_attempts": 3}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
    let after =
        g.feed(json!({"kind": "verified", "slice": "a", "passed": false, "interrupted": true}));
    assert_eq!(after, [], "no retry, no release");
    assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Gating);
    assert_eq!(
        g.next(),
        [Action::Finish {
            status: GoalStatus::Cancelled,
            reason: Some("cancelled before every slice finished".into())
        }]
    );
}

#[test]
fn a_slice_that_may_conflict_with_one_ahead_waits_for_its_verdict() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 3, json!({}));
    let _ = g.next();
    for s in ["a", "b", "c"] {
        let _ = g.started(s);
    }
    // Only a slice that committed earlier and shares a path (or a folder
    // where the other has a file) is ahead; never the other way round.
    assert_eq!(
        g.committed_files("a", &["shared.txt"]),
        [stop("a"), gate("a", &[])]
    );
    assert_eq!(
        g.committed_files("b", &["shared.txt", "b/f"]),
        [stop("b"), gate("b", &["a"])]
    );
    assert_eq!(
        g.committed_files("c", &["c/f"]),
        [stop("c"), gate("c", &[])]
    );
    // Its commit conflicts with `a`'s: it keeps its slot and waits.
    assert_eq!(g.deferred("b", "a"), []);
    assert_eq!(g.next(), [], "`a` is still on its way");
    assert_eq!(
        g.verified(Some("a"), true),
        [stop("a"), Action::Merge { slice: "a".into() }, release("a")]
    );
    assert_eq!(g.next(), [], "`a` is merging");
    let _ = g.merged("a");
    // `a` is in the candidate: `b` is checked again, against it.
    let actions = g.next();
    assert!(actions.contains(&gate("b", &[])), "{actions:?}");
    assert_eq!(
        g.next()
            .iter()
            .filter(|a| matches!(a, Action::Gate { .. }))
            .count(),
        0
    );
}

#[test]
fn a_held_slice_goes_to_its_gates_when_the_one_ahead_fails() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.started("b");
    let _ = g.committed_files("a", &["src/x"]);
    // A file where `a` has a folder.
    assert_eq!(
        g.committed_files("b", &["src"]),
        [stop("b"), gate("b", &["a"])]
    );
    let _ = g.deferred("b", "a");
    let _ = g.verified(Some("a"), false);
    assert_eq!(g.next(), [gate("b", &[])]);
}

#[test]
fn a_cancel_while_a_slice_is_held_ends_the_goal() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.started("b");
    let _ = g.committed_files("a", &["f"]);
    let _ = g.committed_files("b", &["f"]);
    let _ = g.deferred("b", "a");
    assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
    let _ = g.feed(json!({"kind": "verified", "slice": "a", "passed": false, "interrupted": true}));
    let actions = g.next();
    assert!(
        matches!(
            actions.last(),
            Some(Action::Finish {
                status: GoalStatus::Cancelled,
                ..
            })
        ),
        "{actions:?}"
    );
    // Resumed, `b` still waits behind `a`, which goes first.
    let mut resumed = Decider::new();
    assert_eq!(
        resumed.on_resume(&g.state),
        [gate("a", &[]), gate("b", &["a"])]
    );
}

#[test]
fn gates_that_ran_with_a_remote_attempt_are_waited_for_not_sent_again() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    assert_eq!(g.next(), [start("a")]);
    let _ = g.started("a");
    // The job ran the gates: their results follow the commit.
    let after_commit = g.feed(
        json!({"kind": "slice_committed", "slice": "a", "attempt": 1,
        "commit": "c-a", "tree": "t-a", "changed_files": ["a/f"], "gated": true}),
    );
    assert_eq!(after_commit, [stop("a")], "no gate job for gates that ran");
    assert_eq!(g.next(), [], "the goal waits for the verdict");
    assert_eq!(
        g.verified(Some("a"), true),
        [stop("a"), Action::Merge { slice: "a".into() }, release("a")]
    );
    // A controller that died before the verdict was recorded runs them here.
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.feed(
        json!({"kind": "slice_committed", "slice": "a", "attempt": 1,
        "commit": "c-a", "tree": "t-a", "changed_files": ["a/f"], "gated": true}),
    );
    let _ = g.feed(json!({"kind": "goal_resumed", "pid": 1}));
    let resumed = g.decider.on_resume(&g.state);
    assert!(
        resumed.contains(&gate("a", &[])),
        "resumed gates run again, here: {resumed:?}"
    );
}

#[test]
fn a_vanished_agent_program_stops_the_goal_failed_once_running_slices_end() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 2, json!({}));
    assert_eq!(g.next(), [start("a"), start("b")]);
    let _ = g.started("a");
    let _ = g.started("b");
    assert_eq!(
        g.decider
            .on_agent_gone("the agent runs `kimi`, which is not installed".into()),
        [Action::CancelAll]
    );
    let _ = g.failed("a");
    assert_eq!(g.next(), [], "`b` still runs; `c` never starts");
    let _ = g.failed("b");
    let Some(Action::Finish { status, reason }) = g.next().pop() else {
        panic!("the goal did not end");
    };
    assert_eq!(status, GoalStatus::Failed);
    assert!(reason.unwrap().contains("not installed"));
}

#[test]
fn a_retry_works_from_its_commit_or_redoes_on_the_integration_as_its_failure_says() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({"max_attempts": 2}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.started("b");
    // `a`'s gate fails: the next attempt fixes its own commit, judged
    // against the same start.
    let _ = g.committed("a");
    let _ = g.feed(json!({"kind": "gate_finished", "slice": "a", "result": {"name": "test",
        "passed": false, "exit_code": 1, "outcome": "exit 1", "duration_ms": 1, "tree": "t-a", "log": "/l"}}));
    let failed = g.verified(Some("a"), false);
    assert!(failed.contains(&Action::Retry {
        slice: "a".into(),
        cause: RetryCause::Gate {
            gate: "test".into()
        },
        redo: Redo::ItsCommit
    }));
    let _ = g.feed(json!({"kind": "slice_retrying", "slice": "a", "attempt": 1,
        "cause": {"type": "gate", "gate": "test"}, "feedback": "fix it", "work_from": "c-a"}));
    assert_eq!(
        g.next(),
        [Action::Start {
            slice: "a".into(),
            start_commit: "base".into(),
            work_from: Some("c-a".into())
        }]
    );
    // `b`'s agent fails: another attempt of the same task would fail alike.
    let failed = g.failed("b");
    assert!(
        !failed.iter().any(|a| matches!(a, Action::Retry { .. })),
        "{failed:?}"
    );
}

#[test]
fn an_attempt_whose_actor_is_gone_fails_only_while_it_runs() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    assert_eq!(
        g.decider.on_attempt_lost(&g.state, "a", 1, "crashed: boom"),
        [Action::Fail {
            slice: "a".into(),
            attempt: 1,
            reason: "slice actor crashed: boom".into()
        }]
    );
    // An actor of an attempt that is over (it reported, then stopped) fails nothing.
    assert_eq!(g.decider.on_attempt_lost(&g.state, "a", 2, "stopped"), []);
    let _ = g.committed("a");
    assert_eq!(g.decider.on_attempt_lost(&g.state, "a", 1, "stopped"), []);
}

#[test]
fn a_merge_probe_decides_whether_the_gates_run() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let p = Priority::Other;
    assert_eq!(
        g.decider.on_probe("a", Probe::Clean, p),
        [Action::RunGates {
            slice: "a".into(),
            priority: p
        }]
    );
    assert_eq!(
        g.decider.on_probe(
            "a",
            Probe::Integration {
                onto: "m".into(),
                paths: vec!["x".into()]
            },
            p
        ),
        [Action::Conflict {
            slice: "a".into(),
            paths: vec!["x".into()],
            onto: "m".into()
        }]
    );
    assert_eq!(
        g.decider.on_probe(
            "a",
            Probe::Ahead {
                ahead: "b".into(),
                paths: vec!["x".into()]
            },
            p
        ),
        [Action::Defer {
            slice: "a".into(),
            behind: "b".into(),
            paths: vec!["x".into()]
        }]
    );
}
