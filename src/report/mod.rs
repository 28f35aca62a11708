//! The reporter: renders the goal's event stream for the person watching.
//!
//! On a terminal it keeps one live line per slice (state, attempt, elapsed,
//! current gate); otherwise, or with `--no-progress`, it prints one plain
//! line per event to stderr.

mod describe;
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
                if let EventBody::GoalStarted { .. } = &event.body {
                    let style = ProgressStyle::with_template(
                        "{spinner} {prefix:<16.bold} {elapsed:>5} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    for s in &state.slices {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(style.clone());
                        bar.set_prefix(s.id.clone());
                        bar.set_message("pending");
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bars.insert(s.id.clone(), bar);
                    }
                    let _ = multi.println(describe(&event.body));
                    return;
                }
                let Some(id) = event.body.slice() else {
                    let _ = multi.println(describe(&event.body));
                    return;
                };
                let (Some(bar), Some(s)) = (bars.get(id), state.slice(id)) else {
                    return;
                };
                if matches!(event.body, EventBody::SliceStarted { .. }) {
                    bar.reset_elapsed();
                }
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
                if matches!(
                    event.body,
                    EventBody::MergeConflict { .. } | EventBody::SliceFailed { .. }
                ) {
                    let _ = multi.println(format!("{id}: {}", describe(&event.body)));
                }
            }
        }
    }

    /// Ends the live display.
    pub fn finish(&mut self) {
        if let Mode::Live { bars, multi } = &mut self.mode {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
            let _ = multi.clear();
        }
    }
}

fn plain_line(elapsed: Duration, body: &EventBody) -> String {
    let at = format!("{:>7.1}s", elapsed.as_secs_f64());
    match body.slice() {
        Some(slice) => format!("omk {at} [{slice}] {}", describe(body)),
        None => format!("omk {at} {}", describe(body)),
    }
}
