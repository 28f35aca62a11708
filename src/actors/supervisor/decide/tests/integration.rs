//! The integration: judging candidates, moving the branch, bisecting, ejecting.

use super::*;

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
fn integration_gates_that_could_not_run_judge_nothing_and_eject_no_slice() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    let _ = g.merged("a");
    let not_run = |g: &mut Goal| {
        let _ = g.testing("a");
        let _ = g.feed(
            json!({"kind": "gate_finished", "result": {"name": "test", "passed": false,
            "exit_code": null, "outcome": "could not run: the sandbox could not start",
            "duration_ms": 0, "tree": "mt-a", "log": "/l"}}),
        );
        let _ = g.verified(None, false);
        g.next()
    };
    assert_eq!(g.next(), [integrate("a")]);
    // No verdict on the candidate: it is judged again, and nothing is taken out.
    for _ in 0..2 {
        assert_eq!(not_run(&mut g), [integrate("a")]);
    }
    let stop = not_run(&mut g);
    assert_eq!(stop, [Action::CancelAll], "{stop:?}");
    match g.next().as_slice() {
        [Action::Finish {
            status: GoalStatus::Failed,
            reason: Some(reason),
        }] => assert!(reason.contains("not of a slice"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_check_is_reproduced_on_the_head_then_bisected_over_the_branch_s_merges() {
    let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 3, json!({}));
    let _ = g.next();
    for s in ["a", "b", "c"] {
        let _ = g.started(s);
    }
    for s in ["a", "b", "c"] {
        let _ = g.committed(s);
        let _ = g.verified(Some(s), true);
        let _ = g.merged(s);
        assert_eq!(g.next(), [integrate(s)]);
        let _ = g.testing(s);
        let _ = g.integration_gate(s, true);
        let _ = g.verified(None, true);
        assert_eq!(g.next(), [advance(s)]);
        let _ = g.advanced(s);
    }
    let ready = Action::Finish {
        status: GoalStatus::Ready,
        reason: None,
    };
    assert_eq!(g.next(), std::slice::from_ref(&ready));
    let _ = g.feed(json!({"kind": "goal_finished", "status": "ready"}));
    // The pull request's check `ci` failed where the gate `test` had
    // passed; a new run takes the goal up.
    let mut g = Goal {
        decider: Decider::new(),
        ..g
    };
    let _ = g.feed(
        json!({"kind": "landing", "step": "reproducing", "head": "h",
        "check": "ci", "gate": "test"}),
    );
    assert_eq!(g.state.status, GoalStatus::Running);
    // The head's tree first, afresh (its earlier pass does not count).
    assert_eq!(g.next(), [integrate("c")]);
    let _ = g.testing("c");
    assert_eq!(g.next(), [], "one run at a time");
    let _ = g.integration_gate("c", false);
    let _ = g.verified(None, false);
    // The bisection: `b` fails too, `a` passes: `b`'s merge broke it.
    assert_eq!(g.next(), [integrate("b")]);
    let _ = g.testing("b");
    let _ = g.integration_gate("b", false);
    let _ = g.verified(None, false);
    assert_eq!(g.next(), [integrate("a")]);
    let _ = g.testing("a");
    let _ = g.integration_gate("a", true);
    let _ = g.verified(None, true);
    let found = Reproduced {
        head: "h".into(),
        check: "ci".into(),
        gate: "test".into(),
        runs: 3,
        found: Found::Culprit {
            slice: "b".into(),
            tree: "mt-b".into(),
            excerpt: None,
        },
    };
    assert_eq!(g.next(), [Action::Reproduced(found.clone())]);
    let mut body = serde_json::to_value(EventBody::Landing(LandStep::Reproduced(found))).unwrap();
    body["kind"] = json!("landing");
    let _ = g.feed(body);
    // The branch is as it was, and still passes its gates: the goal is
    // ready again, for landing to send the culprit its feedback.
    assert!(g.state.integration.reproducing.is_none());
    assert_eq!(g.state.integration.tree, "mt-c");
    assert_eq!(g.next(), [ready]);
}

#[test]
fn a_check_its_gate_passes_here_is_not_reproduced() {
    let mut g = Goal::new(&[("a", &[])], 1, json!({}));
    let _ = g.next();
    let _ = g.started("a");
    let _ = g.committed("a");
    let _ = g.verified(Some("a"), true);
    let _ = g.merged("a");
    let _ = g.next();
    let _ = g.testing("a");
    let _ = g.integration_gate("a", true);
    let _ = g.verified(None, true);
    let _ = g.next();
    let _ = g.advanced("a");
    let _ = g.feed(
        json!({"kind": "landing", "step": "reproducing", "head": "h",
        "check": "ci", "gate": "test"}),
    );
    assert_eq!(g.next(), [integrate("a")]);
    let _ = g.testing("a");
    let _ = g.integration_gate("a", true);
    let _ = g.verified(None, true);
    let next = g.next();
    let [Action::Reproduced(r)] = next.as_slice() else {
        panic!("{next:?}");
    };
    assert_eq!((r.runs, &r.found), (1, &Found::NotReproduced));
}
