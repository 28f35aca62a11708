//! Stopping, budgets, lost actors and resuming.

use super::*;

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
fn a_vanished_agent_program_stops_the_goal_failed_once_running_slices_end() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 2, json!({}));
    assert_eq!(g.next(), [start("a"), start("b")]);
    let _ = g.started("a");
    let _ = g.started("b");
    assert_eq!(
        g.decider
            .on_unworkable("the agent runs `kimi`, which is not installed".into()),
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
fn gates_that_could_not_run_are_run_again_then_stop_the_goal_blaming_no_slice() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({"max_attempts": 3}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let not_run = |g: &mut Goal| {
        let _ = g.feed(
            json!({"kind": "gate_finished", "slice": "a", "attempt": 1, "result": {
            "name": "test", "passed": false, "exit_code": null,
            "outcome": "not run: the checkout holds tree x, not the commit's", "duration_ms": 0,
            "tree": "t-a", "log": "/l"}}),
        );
        g.verified(Some("a"), false)
    };
    // No verdict: the same attempt's gates run again; no attempt is spent.
    for _ in 0..2 {
        let again = not_run(&mut g);
        assert!(again.contains(&gate("a", &[])), "{again:?}");
        assert!(
            !again.iter().any(|a| matches!(a, Action::Retry { .. })),
            "{again:?}"
        );
        assert_eq!(g.state.slice("a").unwrap().attempts, 1);
        assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Gating);
    }
    // Once more, and the goal stops as omk's or the machine's failure.
    let stop = not_run(&mut g);
    assert_eq!(stop, [Action::CancelAll, release("a")]);
    match g.next().as_slice() {
        [Action::Finish {
            status: GoalStatus::Failed,
            reason: Some(reason),
        }] => assert!(reason.contains("not of the slice"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_merge_the_machine_could_not_make_is_no_verdict_and_is_not_waited_for() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.started("b");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Merging);
    let why = "merging slice `a` into the integration failed (a lock)".to_string();
    assert_eq!(
        g.decider.on_merge_unmade("a", why.clone()),
        [Action::CancelAll]
    );
    // `b` still runs: the goal waits for it, then ends, not for `a`'s merge.
    assert_eq!(g.next(), []);
    let _ = g.failed("b");
    assert_eq!(
        g.next(),
        [Action::Finish {
            status: GoalStatus::Failed,
            reason: Some(why)
        }]
    );
    assert_eq!(
        g.state.slice("a").unwrap().status,
        SliceStatus::Merging,
        "no verdict: merged again on resume"
    );
}
