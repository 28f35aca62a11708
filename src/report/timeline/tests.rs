//! The timeline read back from events, as `goal report --html` draws it.

use serde_json::{json, Value};

use super::*;

/// The timeline of a goal of slices `a` and `b`, from `events` given as
/// (seconds since the start, `kind` and fields).
fn of(events: &[(u64, Value)]) -> Timeline {
    let started = crate::state::tests::goal_started();
    let events: Vec<Event> = std::iter::once(&(0, started))
        .chain(events)
        .enumerate()
        .map(|(i, (s, body))| {
            let mut body = body.clone();
            body["seq"] = json!(i + 1);
            body["ts"] = json!(format!("2026-12-02T00:{:02}:{:02}.000Z", s / 60, s % 60));
            serde_json::from_value(body).unwrap()
        })
        .collect();
    let state = GoalState::from_events(&events);
    timeline(&events, &state)
}

fn started(slice: &str, attempt: u32) -> Value {
    json!({"kind": "slice_started", "slice": slice, "attempt": attempt,
        "start_commit": "base", "branch": format!("omk/g/{slice}"), "worktree": "/w"})
}

fn agent_ok(slice: &str, attempt: u32) -> Value {
    json!({"kind": "agent_finished", "slice": slice, "attempt": attempt, "report": {
        "spec": "exec:true", "exit": "ok", "exit_code": 0, "tokens_in": null,
        "tokens_out": null, "usd": null, "session_id": null, "duration_ms": 1, "log": "/l"}})
}

fn committed(slice: &str, attempt: u32) -> Value {
    json!({"kind": "slice_committed", "slice": slice, "attempt": attempt,
        "commit": format!("c-{slice}{attempt}"), "tree": format!("t-{slice}{attempt}"),
        "changed_files": ["f"]})
}

fn gate(slice: Option<&str>, started: bool, passed: bool) -> Value {
    let mut e = if started {
        json!({"kind": "gate_started", "gate": "test", "tree": "t"})
    } else {
        json!({"kind": "gate_finished", "result": {"name": "test", "passed": passed,
            "exit_code": if passed { 0 } else { 1 }, "outcome": if passed { "exit 0" } else { "exit 1" },
            "duration_ms": 1, "tree": "t", "log": "/l"}})
    };
    if let Some(s) = slice {
        e["slice"] = json!(s);
    }
    e
}

fn phases(row: &Row) -> Vec<(Phase, u32, u64, u64, bool)> {
    row.bars
        .iter()
        .map(|b| {
            (
                b.phase,
                b.attempt,
                b.start_ms / 1000,
                b.end_ms / 1000,
                b.failed,
            )
        })
        .collect()
}

#[test]
fn a_retried_slice_shows_both_attempts_and_what_failed_the_first() {
    let t = of(&[
        (
            1,
            json!({"kind": "base_checked", "passed": true, "gates": [{"name": "test",
            "passed": true, "exit_code": 0, "outcome": "exit 0", "duration_ms": 1000,
            "tree": "t0", "log": "/l"}]}),
        ),
        (1, started("a", 1)),
        (3, started("b", 1)),
        (5, agent_ok("a", 1)),
        (6, committed("a", 1)),
        (7, gate(Some("a"), true, false)),
        (9, gate(Some("a"), false, false)),
        (
            9,
            json!({"kind": "verified", "slice": "a", "passed": false}),
        ),
        (
            9,
            json!({"kind": "slice_retrying", "slice": "a", "attempt": 1,
            "cause": {"type": "gate", "gate": "test"}, "feedback": "f"}),
        ),
        (10, agent_ok("b", 1)),
        (10, committed("b", 1)),
        (10, gate(Some("b"), true, true)),
        (11, gate(Some("b"), false, true)),
        (
            11,
            json!({"kind": "verified", "slice": "b", "passed": true}),
        ),
        (
            12,
            json!({"kind": "slice_merged", "slice": "b", "attempt": 1, "slice_commit": "c-b1",
            "commit": "m-b", "tree": "mt-b", "onto": "base"}),
        ),
        (12, gate(None, true, true)),
        (14, gate(None, false, true)),
        (
            14,
            json!({"kind": "integration_advanced", "commit": "m-b", "tree": "mt-b"}),
        ),
        (15, started("a", 2)),
        (
            20,
            json!({"kind": "goal_finished", "status": "cancelled", "reason": null}),
        ),
    ]);
    assert_eq!(t.span_ms, 20_000);
    let names: Vec<&str> = t.rows.iter().map(Row::name).collect();
    assert_eq!(names, ["base check", "a", "b", "integration"]);
    assert_eq!(phases(&t.rows[0]), [(Phase::Gate, 0, 0, 1, false)]);
    assert_eq!(t.rows[0].bars[0].label, "gate test on the base: exit 0");
    assert_eq!(
        phases(&t.rows[1]),
        [
            (Phase::Waiting, 0, 0, 1, false),
            (Phase::Agent, 1, 1, 5, false),
            (Phase::Commit, 1, 5, 6, false),
            (Phase::GateQueued, 1, 6, 7, false),
            (Phase::Gate, 1, 7, 9, true),
            (Phase::Waiting, 1, 9, 15, false),
            (Phase::Agent, 2, 15, 20, false),
        ]
    );
    assert_eq!(t.rows[1].bars[4].label, "gate test: exit 1");
    assert_eq!(t.rows[1].marks[0].label, "attempt 2");
    assert_eq!(t.rows[1].marks[0].at_ms, 15_000);
    assert_eq!(
        phases(&t.rows[2]).last(),
        Some(&(Phase::Merge, 1, 11, 12, false))
    );
    assert_eq!(phases(&t.rows[3]), [(Phase::Gate, 0, 12, 14, false)]);
    assert!(t.rows[3].marks[0].label.contains("advanced"));
}

#[test]
fn a_refused_commit_and_a_conflict_are_drawn_failed_like_a_failed_gate() {
    let t = of(&[
        (1, started("a", 1)),
        (3, agent_ok("a", 1)),
        (
            4,
            json!({"kind": "slice_failed", "slice": "a", "attempt": 1,
            "status": "scope_violation", "reason": "changed 1 path outside its write scope: x",
            "paths": ["x"]}),
        ),
        (
            4,
            json!({"kind": "slice_retrying", "slice": "a", "attempt": 1,
            "cause": {"type": "scope"}, "feedback": "f"}),
        ),
        (5, started("a", 2)),
        (7, agent_ok("a", 2)),
        (8, committed("a", 2)),
        (
            8,
            json!({"kind": "merge_conflict", "slice": "a", "attempt": 2,
            "paths": ["a/f"], "onto": "base", "before_gates": true}),
        ),
        (
            9,
            json!({"kind": "goal_finished", "status": "not_ready", "reason": null}),
        ),
    ]);
    let a = t.rows.iter().find(|r| r.name() == "a").expect("a's row");
    let failed: Vec<(Phase, u32, String)> = a
        .bars
        .iter()
        .filter(|b| b.failed)
        .map(|b| (b.phase, b.attempt, b.label.clone()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                Phase::Commit,
                1,
                "changed 1 path outside its write scope: x".to_string()
            ),
            (Phase::Merge, 2, "conflict on a/f".to_string()),
        ],
        "{:?}",
        phases(a)
    );
}
