//! The reporter: renders the goal's event stream for the person watching.
//!
//! On a terminal it keeps a live view: a summary line (slices per state,
//! gates running, merges, elapsed time, tokens and cost when known) and one
//! row per *active* slice (running, gating, merging), as many as the
//! terminal's height leaves room for; a slice that ends is printed once as
//! a plain line above the view and its row goes. Otherwise, or with
//! `--no-progress`, it prints one plain line per event to stderr.

mod describe;
pub mod html;
#[cfg(test)]
mod snapshots;
pub mod steps;
pub mod timeline;
pub use describe::describe;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::state::{GoalState, SliceState, SliceStatus};
use crate::store::events::{Event, EventBody};

/// Renders events as they are recorded.
pub struct Reporter {
    mode: Mode,
    started: Instant,
}

enum Mode {
    Plain,
    Live(Live),
}

/// The live view.
struct Live {
    multi: MultiProgress,
    /// The summary line, first.
    summary: ProgressBar,
    /// The rows of active slices.
    rows: HashMap<String, ProgressBar>,
    /// At most this many rows: the terminal's height less the summary and
    /// a line for what is printed above.
    max_rows: usize,
    /// How each slice was last shown, so an end is printed once.
    shown: HashMap<String, SliceStatus>,
}

impl Reporter {
    /// A live display when `live` is asked for and stderr is a terminal,
    /// plain lines otherwise.
    pub fn new(live: bool) -> Reporter {
        let mode = if live && std::io::stderr().is_terminal() {
            let height = console::Term::stderr()
                .size_checked()
                .map_or(24, |(rows, _)| rows as usize);
            Mode::Live(Live::new(
                ProgressDrawTarget::stderr(),
                height.saturating_sub(2).max(1),
            ))
        } else {
            Mode::Plain
        };
        Reporter {
            mode,
            started: Instant::now(),
        }
    }

    /// Whether it shows a live display.
    pub fn is_live(&self) -> bool {
        matches!(self.mode, Mode::Live(_))
    }

    /// Prints a note that is not an event (warnings before the run starts).
    pub fn notice(&self, text: &str) {
        match &self.mode {
            Mode::Plain => eprintln!("omk: {}", crate::shown::visible_lines(text)),
            Mode::Live(live) => {
                let _ = live
                    .multi
                    .println(format!("omk: {}", crate::shown::visible_lines(text)));
            }
        }
    }

    /// Shows one recorded event, timed from the goal's start (so a watcher
    /// that attached late keeps the goal's clock, not its own).
    pub fn event(&mut self, event: &Event, state: &GoalState) {
        let elapsed = since(&state.started_at, &event.ts).unwrap_or_else(|| self.started.elapsed());
        match &mut self.mode {
            Mode::Plain => eprintln!("{}", plain_line(elapsed, &event.body)),
            Mode::Live(live) => live.event(event, state),
        }
    }

    /// Ends the live display: every row and the summary are taken away (the
    /// summary that follows says how each slice ended), none left spinning.
    pub fn finish(&mut self) {
        if let Mode::Live(live) = &mut self.mode {
            for bar in live.rows.values() {
                bar.finish_and_clear();
            }
            live.rows.clear();
            live.summary.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

impl Live {
    fn new(target: ProgressDrawTarget, max_rows: usize) -> Live {
        let multi = MultiProgress::with_draw_target(target);
        let summary = multi.add(ProgressBar::new_spinner());
        summary.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>5} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        summary.enable_steady_tick(Duration::from_millis(120));
        Live {
            multi,
            summary,
            rows: HashMap::new(),
            max_rows,
            shown: HashMap::new(),
        }
    }

    fn event(&mut self, event: &Event, state: &GoalState) {
        let says = match event.body.slice() {
            Some(id) => format!("{id}: {}", describe(&event.body)),
            None => describe(&event.body),
        };
        match &event.body {
            // What happens to the goal as a whole, and how a slice failed,
            // is printed; the rows show the rest.
            EventBody::MergeConflict { .. }
            | EventBody::SliceFailed { .. }
            | EventBody::GatesDeferred { .. } => self.print(says),
            body if body.slice().is_none() => self.print(says),
            _ => {}
        }
        if let EventBody::SliceStarted { slice, .. } = &event.body {
            if let Some(bar) = self.rows.get(slice) {
                bar.reset_elapsed();
            }
        }
        self.update(state);
    }

    fn print(&self, line: String) {
        let _ = self.multi.println(line);
    }

    /// Brings the rows and the summary to `state`: ended slices are printed
    /// once and lose their row; active ones get one while there is room.
    fn update(&mut self, state: &GoalState) {
        for s in &state.slices {
            let before = self.shown.insert(s.id.clone(), s.status);
            if active(s) {
                if let Some(bar) = self.rows.get(&s.id) {
                    bar.set_message(row_text(s));
                }
                continue;
            }
            if let Some(bar) = self.rows.remove(&s.id) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            if s.status.is_final() && before.is_some_and(|b| b != s.status) {
                self.print(format!("{:<16} {}", s.id, row_text(s)));
            }
        }
        for s in state.slices.iter().filter(|s| active(s)) {
            if self.rows.len() >= self.max_rows {
                break;
            }
            if !self.rows.contains_key(&s.id) {
                let bar = self.multi.add(row(&s.id));
                bar.set_message(row_text(s));
                self.rows.insert(s.id.clone(), bar);
            }
        }
        let hidden = state.slices.iter().filter(|s| active(s)).count() - self.rows.len();
        self.summary.set_message(summary_text(state, hidden));
    }
}

/// Whether a slice has something going on: it gets a row.
fn active(s: &SliceState) -> bool {
    matches!(
        s.status,
        SliceStatus::Running | SliceStatus::Gating | SliceStatus::Merging
    ) && !s.gates_interrupted
}

/// A new spinner row for slice `id`.
fn row(id: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("  {spinner} {prefix:<16.bold} {elapsed:>5} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::new_spinner();
    bar.set_style(style);
    bar.set_prefix(id.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// How slice `s` stands, in one line.
fn row_text(s: &SliceState) -> String {
    crate::shown::visible(&row_line(s)).into_owned()
}

fn row_line(s: &SliceState) -> String {
    let mut line = format!("{} · attempt {}", s.status, s.attempts.max(1));
    if let Some(g) = &s.current_gate {
        line += &format!(" · gate {g}");
    }
    if let Some(r) = &s.reason {
        line += &format!(" · {r}");
    }
    line
}

/// The summary line: slices per state, gates running, merges, usage; and
/// how many active slices have no row.
fn summary_text(state: &GoalState, hidden: usize) -> String {
    let mut counts: Vec<(SliceStatus, usize)> = Vec::new();
    for s in &state.slices {
        match counts.iter_mut().find(|(st, _)| *st == s.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.status, 1)),
        }
    }
    counts.sort_by_key(|(st, _)| st.to_string());
    let per_state: Vec<String> = counts.iter().map(|(st, n)| format!("{n} {st}")).collect();
    let mut line = format!(
        "{}: {}",
        crate::words::count(state.slices.len(), "slice"),
        per_state.join(" · ")
    );
    let gates = state
        .slices
        .iter()
        .filter(|s| s.current_gate.is_some())
        .count()
        + usize::from(state.integration.testing.is_some());
    if gates > 0 {
        line += &format!(" │ {} running", crate::words::count(gates, "gate"));
    }
    let merges = state.integration.order.len() + state.integration.candidate.len();
    if merges > 0 {
        line += &format!(" │ {}", crate::words::count(merges, "merge"));
    }
    let u = &state.usage;
    if let Some(tokens) = u.tokens_in.map(|i| i + u.tokens_out.unwrap_or(0)) {
        line += &format!(" │ {tokens} tokens");
    }
    if let Some(usd) = u.usd {
        line += &format!(" ${usd:.2}");
    }
    if hidden > 0 {
        line += &format!(" │ {hidden} more active than fit");
    }
    line
}

/// The time from `start` to `at` (both RFC 3339), when both can be read.
fn since(start: &str, at: &str) -> Option<Duration> {
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    let d = parse(at)? - parse(start)?;
    Duration::try_from(d).ok()
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

    /// A live view of at most `rows` rows, drawn nowhere.
    fn live(rows: usize) -> Reporter {
        Reporter {
            mode: Mode::Live(Live::new(ProgressDrawTarget::hidden(), rows)),
            started: Instant::now(),
        }
    }

    /// The rows shown, sorted, and the summary line.
    fn view(r: &Reporter) -> (Vec<String>, String) {
        let Mode::Live(live) = &r.mode else {
            return (vec![], String::new());
        };
        let mut rows: Vec<String> = live
            .rows
            .iter()
            .map(|(id, b)| format!("{id}: {}", b.message()))
            .collect();
        rows.sort();
        (rows, live.summary.message())
    }

    fn event(seq: u64, mut body: serde_json::Value) -> Event {
        body["seq"] = json!(seq);
        body["ts"] = json!("2026-12-02T00:00:00Z");
        serde_json::from_value(body).unwrap()
    }

    fn goal_started() -> Event {
        let slices: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|id| json!({"id": id, "prompt": "p", "write_scope": [format!("{id}/**")]}))
            .collect();
        event(
            1,
            json!({"kind": "goal_started", "goal_id": "g", "goal": "goal",
            "repository": "/r", "base_commit": "base", "base_tree": "t0", "base_ref": null,
            "integration_branch": "omk/g/integration", "plan": {"slices": slices},
            "agent": "exec:true", "gates": [], "allow_no_gates": true, "max_attempts": 1,
            "concurrency": 3, "deliver": "branch",
            "limits": {"slice_timeout_ms": 1000, "inactivity_timeout_ms": 1000, "gate_concurrency": 1}}),
        )
    }

    fn started(seq: u64, slice: &str) -> Event {
        event(
            seq,
            json!({"kind": "slice_started", "slice": slice, "attempt": 1,
            "start_commit": "base", "branch": format!("omk/g/{slice}"), "worktree": "/pool/slot"}),
        )
    }

    #[test]
    fn only_active_slices_get_rows_as_many_as_fit_and_none_is_left_at_the_end() {
        let mut state = GoalState::default();
        let mut r = live(2);
        let mut feed = |r: &mut Reporter, e: Event| {
            state.apply(&e);
            r.event(&e, &state);
        };
        feed(&mut r, goal_started());
        assert_eq!(
            view(&r).0,
            Vec::<String>::new(),
            "pending slices get no row"
        );
        for (seq, id) in [(2, "a"), (3, "b"), (4, "c")] {
            feed(&mut r, started(seq, id));
        }
        let (rows, summary) = view(&r);
        assert_eq!(rows, ["a: running · attempt 1", "b: running · attempt 1"]);
        assert!(
            summary.starts_with("3 slices: 3 running")
                && summary.ends_with("1 more active than fit"),
            "{summary}"
        );
        // `a` fails: its row goes, and `c` gets the room.
        feed(
            &mut r,
            event(
                5,
                json!({"kind": "slice_failed", "slice": "a", "attempt": 1,
                "status": "failed", "reason": "agent failed: exit 1", "paths": []}),
            ),
        );
        let (rows, summary) = view(&r);
        assert_eq!(rows, ["b: running · attempt 1", "c: running · attempt 1"]);
        assert_eq!(summary, "3 slices: 1 failed · 2 running");
        r.finish();
        assert_eq!(view(&r).0, Vec::<String>::new(), "a row is left");
    }

    #[test]
    fn a_resumed_goal_shows_the_slices_still_on_their_way() {
        let mut state = GoalState::default();
        state.apply(&goal_started());
        state.apply(&started(2, "a"));
        state.apply(&event(
            3,
            json!({"kind": "slice_committed", "slice": "a", "attempt": 1,
            "commit": "c-a", "tree": "t-a", "changed_files": ["a/f"]}),
        ));
        // A new controller: its reporter sees the log from `goal_resumed` on.
        let resumed = event(4, json!({"kind": "goal_resumed", "pid": 1}));
        state.apply(&resumed);
        let mut r = live(10);
        r.event(&resumed, &state);
        assert_eq!(view(&r).0, ["a: merging · attempt 1"]);
        r.finish();
        assert_eq!(view(&r).0, Vec::<String>::new());
    }
}
