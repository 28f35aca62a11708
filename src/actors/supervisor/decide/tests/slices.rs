//! What each slice gets: starts, gates, holds, retries.

use super::*;

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
            },
            release("a")
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
        [stop("a"), gate("a", &[]), release("a")]
    );
    assert_eq!(
        g.committed_files("b", &["shared.txt", "b/f"]),
        [stop("b"), gate("b", &["a"]), release("b")]
    );
    assert_eq!(
        g.committed_files("c", &["c/f"]),
        [stop("c"), gate("c", &[]), release("c")]
    );
    // Its commit conflicts with `a`'s: it waits, holding no slot.
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
        [stop("b"), gate("b", &["a"]), release("b")]
    );
    let _ = g.deferred("b", "a");
    let _ = g.verified(Some("a"), false);
    assert_eq!(g.next(), [gate("b", &[])]);
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
    assert_eq!(
        after_commit,
        [stop("a"), release("a")],
        "no gate job for gates that ran; the slot goes back"
    );
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
