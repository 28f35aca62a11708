//! The decisions, fed states and events as the log would hold them.

mod integration;
mod slices;
mod stopping;

use super::*;
use crate::store::events::Event;
use crate::store::events::EventBody;
use crate::store::events::RetryCause;
use crate::store::landing::{Found, LandStep, Reproduced};
use serde_json::{json, Value};

/// A goal's state and its decider, fed events as the log would hold them.
pub(super) struct Goal {
    pub(super) state: GoalState,
    pub(super) decider: Decider,
    seq: u64,
}

impl Goal {
    /// Slices `(id, depends_on)`, run `concurrency` at a time, with one
    /// gate for slices and the integration, and `limits` merged in.
    pub(super) fn new(slices: &[(&str, &[&str])], concurrency: usize, limits: Value) -> Goal {
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
    pub(super) fn feed(&mut self, mut body: Value) -> Vec<Action> {
        self.seq += 1;
        body["seq"] = json!(self.seq);
        body["ts"] = json!("2026-12-02T00:00:00Z");
        let event: Event = serde_json::from_value(body).unwrap();
        self.state.apply(&event);
        self.decider.on_event(&self.state, &event.body)
    }

    pub(super) fn next(&mut self) -> Vec<Action> {
        self.decider.next(&self.state)
    }

    pub(super) fn started(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "slice_started", "slice": slice, "attempt": 1,
            "start_commit": "base", "branch": format!("omk/g/{slice}"), "worktree": "/pool/slot"}),
        )
    }

    pub(super) fn committed(&mut self, slice: &str) -> Vec<Action> {
        self.committed_files(slice, &[&format!("{slice}/f")])
    }

    pub(super) fn committed_files(&mut self, slice: &str, files: &[&str]) -> Vec<Action> {
        self.feed(
            json!({"kind": "slice_committed", "slice": slice, "attempt": 1,
            "commit": format!("c-{slice}"), "tree": format!("t-{slice}"), "changed_files": files}),
        )
    }

    pub(super) fn deferred(&mut self, slice: &str, behind: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "gates_deferred", "slice": slice, "attempt": 1,
            "behind": behind, "paths": ["shared.txt"]}),
        )
    }

    pub(super) fn verified(&mut self, slice: Option<&str>, passed: bool) -> Vec<Action> {
        self.feed(json!({"kind": "verified", "slice": slice, "passed": passed}))
    }

    pub(super) fn merged(&mut self, slice: &str) -> Vec<Action> {
        self.feed(json!({"kind": "slice_merged", "slice": slice, "attempt": 1,
            "slice_commit": format!("c-{slice}"), "commit": format!("m-{slice}"), "tree": format!("mt-{slice}")}))
    }

    /// The integration gates start on slice `slice`'s merge.
    pub(super) fn testing(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "integration_started", "commit": format!("m-{slice}"),
            "tree": format!("mt-{slice}"), "worktree": "/pool/int"}),
        )
    }

    pub(super) fn integration_gate(&mut self, slice: &str, passed: bool) -> Vec<Action> {
        self.feed(
            json!({"kind": "gate_finished", "result": {"name": "test", "passed": passed,
            "exit_code": if passed { 0 } else { 1 }, "outcome": "exit", "duration_ms": 1,
            "tree": format!("mt-{slice}"), "log": "/l"}}),
        )
    }

    pub(super) fn advanced(&mut self, slice: &str) -> Vec<Action> {
        self.feed(
            json!({"kind": "integration_advanced", "commit": format!("m-{slice}"),
            "tree": format!("mt-{slice}")}),
        )
    }

    pub(super) fn failed(&mut self, slice: &str) -> Vec<Action> {
        self.feed(json!({"kind": "slice_failed", "slice": slice, "attempt": 1,
            "status": "failed", "reason": "agent failed: exit 1", "paths": []}))
    }
}

/// A first attempt, from the base.
pub(super) fn start(slice: &str) -> Action {
    start_from(slice, "base")
}

pub(super) fn start_from(slice: &str, commit: &str) -> Action {
    Action::Start {
        slice: slice.into(),
        start_commit: commit.into(),
        work_from: None,
    }
}

pub(super) fn stop(slice: &str) -> Action {
    Action::StopAttempt {
        slice: slice.into(),
    }
}

pub(super) fn integrate(slice: &str) -> Action {
    Action::Integrate {
        commit: format!("m-{slice}").into(),
        tree: format!("mt-{slice}").into(),
        priority: Priority::Candidate,
    }
}

pub(super) fn advance(slice: &str) -> Action {
    Action::Advance {
        commit: format!("m-{slice}").into(),
        tree: format!("mt-{slice}").into(),
    }
}

/// Gates for a slice no other waits for.
pub(super) fn gate(slice: &str, ahead: &[&str]) -> Action {
    Action::Gate {
        slice: slice.into(),
        ahead: ahead.iter().map(|a| (*a).into()).collect(),
        priority: Priority::Other,
    }
}

pub(super) fn release(slice: &str) -> Action {
    Action::Release {
        slice: slice.into(),
    }
}
