//! The fold and the verdict, fed events as the log holds them.

use serde_json::{json, Value};

use super::*;
use crate::store::events::Event;

/// The `goal_started` of a goal of slices `a` and `b` (write scopes `a/**`
/// and `b/**`) with one gate, `test`, judging slices and the integration.
pub(crate) fn goal_started() -> Value {
    json!({"kind": "goal_started", "goal_id": "g", "goal": "goal",
        "repository": "/r", "base_commit": "base", "base_tree": "t0", "base_ref": null,
        "integration_branch": "omk/g/integration",
        "plan": {"slices": [
            {"id": "a", "prompt": "p", "write_scope": ["a/**"]},
            {"id": "b", "prompt": "p", "write_scope": ["b/**"]}]},
        "agent": "exec:true",
        "gates": [{"name": "test", "command": "true", "timeout": 1000, "scope": "both"}],
        "allow_no_gates": false, "max_attempts": 2, "concurrency": 2, "deliver": "branch",
        "limits": {"slice_timeout_ms": 1000, "inactivity_timeout_ms": 1000, "gate_concurrency": 1}})
}

/// That goal folded from `events` (`kind` and fields each).
fn fold(events: &[Value]) -> GoalState {
    let started = goal_started();
    let mut state = GoalState::default();
    for (i, body) in std::iter::once(&started).chain(events).enumerate() {
        let mut body = body.clone();
        body["seq"] = json!(i + 1);
        body["ts"] = json!("2026-12-02T00:00:00Z");
        let event: Event = serde_json::from_value(body).unwrap();
        state.apply(&event);
    }
    state
}

fn merged(slice: &str, onto: &str) -> Value {
    json!({"kind": "slice_merged", "slice": slice, "attempt": 1, "slice_commit": format!("c-{slice}"),
        "commit": format!("m-{slice}"), "tree": format!("mt-{slice}"), "onto": onto})
}

fn integration_gate(tree: &str, passed: bool) -> Value {
    json!({"kind": "gate_finished", "result": {"name": "test", "passed": passed,
        "exit_code": 0, "outcome": "exit", "duration_ms": 1, "tree": tree, "log": "/l"}})
}

fn advanced(slice: &str) -> Value {
    json!({"kind": "integration_advanced", "commit": format!("m-{slice}"), "tree": format!("mt-{slice}")})
}

#[test]
fn a_new_goal_holds_its_plan_pending_on_the_base() {
    let s = fold(&[]);
    assert_eq!(s.status, GoalStatus::Running);
    assert_eq!(s.integration.commit, "base");
    assert_eq!(s.integration.tip(), "base");
    let ids: Vec<&str> = s.slices.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(s.slices.iter().all(|s| s.status == SliceStatus::Pending));
    assert_eq!(s.slice("b").unwrap().branch, "omk/g/b");
}

#[test]
fn merges_grow_the_candidate_and_only_an_advance_moves_the_branch() {
    let s = fold(&[merged("a", "base"), merged("b", "m-a")]);
    assert_eq!(s.slice("a").unwrap().status, SliceStatus::Merged);
    assert_eq!(s.integration.tip(), "m-b");
    assert_eq!(s.integration.commit, "base", "the branch has not moved");
    assert!(!s.integrated("a"));
    let s = fold(&[merged("a", "base"), merged("b", "m-a"), advanced("a")]);
    assert_eq!(s.integration.commit, "m-a");
    assert_eq!(s.integration.order, ["a"]);
    assert!(s.integrated("a") && !s.integrated("b"));
    assert_eq!(s.integration.candidate.len(), 1);
}

#[test]
fn a_merge_onto_a_commit_that_is_not_the_tip_changes_nothing() {
    let s = fold(&[merged("a", "base"), merged("b", "somewhere-else")]);
    assert_eq!(s.integration.tip(), "m-a");
    assert_eq!(s.slice("b").unwrap().status, SliceStatus::Pending);
}

#[test]
fn the_verdict_is_ready_only_with_every_slice_on_the_branch_and_its_tree_passed() {
    let both = [merged("a", "base"), merged("b", "m-a")];
    let (status, reason) = fold(&both).verdict();
    assert_eq!(status, GoalStatus::NotReady);
    assert!(reason
        .unwrap()
        .contains("not yet passed by the integration gates"));

    // Passed on another tree than the branch's: not a verdict on it.
    let mut events = both.to_vec();
    events.extend([integration_gate("mt-a", true), advanced("a"), advanced("b")]);
    let (status, reason) = fold(&events).verdict();
    assert_eq!(status, GoalStatus::NotReady);
    assert!(reason.unwrap().contains("did not run on the final tree"));

    events.push(integration_gate("mt-b", true));
    assert_eq!(fold(&events).verdict(), (GoalStatus::Ready, None));

    // A later failure on the same tree is the verdict.
    events.push(integration_gate("mt-b", false));
    let (status, reason) = fold(&events).verdict();
    assert_eq!(status, GoalStatus::NotReady);
    assert!(reason.unwrap().contains("integration gate `test` failed"));
}

#[test]
fn an_ejected_slice_fails_with_the_gate_and_the_rest_merge_again() {
    let s = fold(&[
        merged("a", "base"),
        merged("b", "m-a"),
        integration_gate("mt-a", false),
        json!({"kind": "slice_ejected", "slice": "a", "attempt": 1, "gate": "test",
            "tree": "mt-a", "onto": "base", "remerge": ["b"]}),
    ]);
    let a = s.slice("a").unwrap();
    assert_eq!(a.status, SliceStatus::GateFailed);
    assert!(a
        .reason
        .as_deref()
        .unwrap()
        .contains("integration gate `test`"));
    assert_eq!(a.attempt_history.len(), 1);
    assert!(matches!(a.ended, Some(AttemptEnd::Ejected { .. })));
    assert_eq!(s.slice("b").unwrap().status, SliceStatus::Merging);
    assert!(s.integration.candidate.is_empty());
    assert_eq!(s.integration.tip(), "base");
}

#[test]
fn a_resumed_goal_runs_interrupted_attempts_again_under_the_same_number() {
    let s = fold(&[
        json!({"kind": "slice_started", "slice": "a", "attempt": 1, "start_commit": "base",
            "branch": "omk/g/a", "worktree": "/pool/slot"}),
        json!({"kind": "slice_blocked", "slice": "b", "reason": "dependency `x` did not merge"}),
        json!({"kind": "goal_resumed", "pid": 7, "raised": {"max_attempts": 5}}),
    ]);
    let a = s.slice("a").unwrap();
    assert_eq!((a.status, a.attempts), (SliceStatus::Pending, 0));
    let b = s.slice("b").unwrap();
    assert!(!b.blocked && b.reason.is_none(), "judged again");
    assert_eq!(s.settings.max_attempts, 5, "the raised limit");
}
