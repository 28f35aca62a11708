//! The reporter: renders the goal's event stream for the person watching.
//!
//! On a terminal it keeps one live line per slice (state, attempt, elapsed,
//! current gate); otherwise, or with `--no-progress`, it prints one plain
//! line per event to stderr.

mod describe;
pub mod steps;
pub use describe::describe;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::state::GoalState;
use crate::store::events::{Event, EventBody};

/// Renders events as they are recorded.
pub struct Reporter {
    mode: Mode,
    started: Instant,
}

enum Mode {
    Plain,
    Live {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
}

impl Reporter {
    /// A live display when `live` is asked for and stderr is a terminal,
    /// plain lines otherwise.
    pub fn new(live: bool) -> Reporter {
        let mode = if live && std::io::stderr().is_terminal() {
            Mode::Live {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            }
        } else {
            Mode::Plain
        };
        Reporter {
            mode,
            started: Instant::now(),
        }
    }

    /// Prints a note that is not an event (warnings before the run starts).
    pub fn notice(&self, text: &str) {
        match &self.mode {
            Mode::Plain => eprintln!("omk: {text}"),
            Mode::Live { multi, .. } => {
                let _ = multi.println(format!("omk: {text}"));
            }
        }
    }

    /// Shows one recorded event.
    pub fn event(&mut self, event: &Event, state: &GoalState) {
        let elapsed = self.started.elapsed();
        match &mut self.mode {
            Mode::Plain => eprintln!("{}", plain_line(elapsed, &event.body)),
            Mode::Live { multi, bars } => {
                // A row per slice, for a new goal and for one taken over
                // (a resumed or retried goal starts with no rows).
                if matches!(
                    event.body,
                    EventBody::GoalStarted { .. }
                        | EventBody::GoalResumed { .. }
                        | EventBody::GoalRetried { .. }
                ) {
                    for s in &state.slices {
                        let bar = bars
                            .entry(s.id.clone())
                            .or_insert_with(|| row(multi, &s.id));
                        show(bar, s);
                    }
                    let _ = multi.println(describe(&event.body));
                    return;
                }
                let Some(id) = event.body.slice() else {
                    let _ = multi.println(describe(&event.body));
                    return;
                };
                let Some(s) = state.slice(id) else {
                    return;
                };
                let bar = bars.entry(id.to_string()).or_insert_with(|| row(multi, id));
                if matches!(event.body, EventBody::SliceStarted { .. }) {
                    bar.reset_elapsed();
                }
                show(bar, s);
                if matches!(
                    event.body,
                    EventBody::MergeConflict { .. } | EventBody::SliceFailed { .. }
                ) {
                    let _ = multi.println(format!("{id}: {}", describe(&event.body)));
                }
            }
        }
    }

    /// Ends the live display: every row is taken away (the summary that
    /// follows says how each slice ended), none left spinning.
    pub fn finish(&mut self) {
        if let Mode::Live { bars, multi } = &mut self.mode {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}

/// A new spinner row for slice `id`.
fn row(multi: &MultiProgress, id: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {prefix:<16.bold} {elapsed:>5} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = multi.add(ProgressBar::new_spinner());
    bar.set_style(style);
    bar.set_prefix(id.to_string());
    bar.set_message("pending");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Shows slice `s` as it is now on its row; a slice that will not change
/// any more stops spinning.
fn show(bar: &ProgressBar, s: &crate::state::SliceState) {
    let mut line = format!("{} · attempt {}", s.status, s.attempts.max(1));
    if let Some(g) = &s.current_gate {
        line += &format!(" · gate {g}");
    }
    if let Some(r) = &s.reason {
        line += &format!(" · {r}");
    }
    if s.status.is_final() || s.blocked {
        bar.finish_with_message(line);
    } else {
        bar.set_message(line);
    }
}

fn plain_line(elapsed: Duration, body: &EventBody) -> String {
    let at = format!("{:>7.1}s", elapsed.as_secs_f64());
    match body.slice() {
        Some(slice) => format!("omk {at} [{slice}] {}", describe(body)),
        None => format!("omk {at} {}", describe(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Reporter {
        Reporter {
            mode: Mode::Live {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
                bars: HashMap::new(),
            },
            started: Instant::now(),
        }
    }

    fn rows(r: &Reporter) -> Vec<(String, String, bool)> {
        let Mode::Live { bars, .. } = &r.mode else {
            return vec![];
        };
        let mut rows: Vec<_> = bars
            .iter()
            .map(|(id, b)| (id.clone(), b.message(), b.is_finished()))
            .collect();
        rows.sort();
        rows
    }

    fn event(seq: u64, mut body: serde_json::Value) -> Event {
        body["seq"] = json!(seq);
        body["ts"] = json!("2026-12-02T00:00:00Z");
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_resumed_goal_gets_its_rows_and_none_is_left_spinning_at_the_end() {
        let started = event(
            1,
            json!({"kind": "goal_started", "goal_id": "g", "goal": "goal",
            "repository": "/r", "base_commit": "base", "base_tree": "t0", "base_ref": null,
            "integration_branch": "omk/g/integration",
            "plan": {"slices": [
                {"id": "a", "prompt": "p", "write_scope": ["a/**"]},
                {"id": "b", "prompt": "p", "write_scope": ["b/**"]}]},
            "agent": "exec:true", "gates": [], "allow_no_gates": true, "max_attempts": 1,
            "concurrency": 2, "deliver": "branch",
            "limits": {"slice_timeout_ms": 1000, "inactivity_timeout_ms": 1000, "gate_concurrency": 1}}),
        );
        let running = event(
            2,
            json!({"kind": "slice_started", "slice": "a", "attempt": 1,
            "start_commit": "base", "branch": "omk/g/a", "worktree": "/pool/slot"}),
        );
        let mut state = GoalState::default();
        state.apply(&started);
        state.apply(&running);
        // A new controller: its reporter sees the log from `goal_resumed` on.
        let resumed = event(3, json!({"kind": "goal_resumed", "pid": 1}));
        state.apply(&resumed);
        let mut r = live();
        r.event(&resumed, &state);
        let shown = rows(&r);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown
            .iter()
            .all(|(_, msg, done)| msg.starts_with("pending") && !done));
        r.finish();
        assert!(
            rows(&r).iter().all(|(_, _, done)| *done),
            "a row still spins"
        );
    }
}
