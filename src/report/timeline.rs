//! A goal's timeline, read back from its events: for each slice, when it
//! waited, its agent ran, its work was committed, its gates queued and ran,
//! and it merged, attempt by attempt; the base check's and the
//! integration's gates on rows of their own.
//!
//! `goal report --html` draws it. Like [`super::steps`], it reads only the
//! event log, so it works for a running goal, a finished one, or one from
//! another clone.

use std::collections::HashMap;

use crate::agent::AgentExit;
use crate::state::{GoalState, SliceStatus};
use crate::store::events::{Event, EventBody};

/// What a slice was doing during a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for its dependencies, a free slot, or a retry's turn.
    Waiting,
    /// Its agent ran.
    Agent,
    /// omk checked and committed what the agent left.
    Commit,
    /// Committed, waiting for its gates (cores, or a slice ahead of it that
    /// it conflicts with).
    GateQueued,
    /// A gate ran.
    Gate,
    /// Verified, waiting for and going through the integrator.
    Merge,
    /// A setup installed the dependencies, or seeded them, in a slot.
    Setup,
}

impl Phase {
    /// Every phase, in the order a slice goes through them.
    pub const ALL: [Phase; 7] = [
        Phase::Waiting,
        Phase::Agent,
        Phase::Commit,
        Phase::GateQueued,
        Phase::Gate,
        Phase::Merge,
        Phase::Setup,
    ];

    /// The phase in a word or two.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Agent => "agent",
            Phase::Commit => "commit",
            Phase::GateQueued => "gate queued",
            Phase::Gate => "gate",
            Phase::Merge => "merge",
            Phase::Setup => "setup",
        }
    }
}

/// One stretch of time a row spent in one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub phase: Phase,
    /// The slice's attempt (0 on the base and integration rows).
    pub attempt: u32,
    /// Milliseconds since the goal started.
    pub start_ms: u64,
    pub end_ms: u64,
    /// It ended the attempt in failure: the agent failed, a gate failed,
    /// the commit was refused, the merge conflicted.
    pub failed: bool,
    /// What it was, in words: the gate's name and outcome, the agent's
    /// outcome, why it failed.
    pub label: String,
}

/// Which row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// The slice gates on the base commit, before any agent.
    Base,
    /// The setups' runs and seedings, in whichever slot they were.
    Setup,
    /// A slice, by id.
    Slice(String),
    /// The integration's gates on its candidates.
    Integration,
}

/// A moment worth a mark: a new attempt, an ejection, the integration
/// branch moving.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at_ms: u64,
    pub label: String,
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    /// How the slice ended (or stands); `None` on the base and integration rows.
    pub status: Option<SliceStatus>,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
}

impl Row {
    /// The row's name: the slice id, `base check` or `integration`.
    pub fn name(&self) -> &str {
        match &self.kind {
            RowKind::Base => "base check",
            RowKind::Setup => "setup",
            RowKind::Slice(id) => id,
            RowKind::Integration => crate::plan::INTEGRATION,
        }
    }
}

/// The whole goal, in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// From the goal's start to its last event.
    pub span_ms: u64,
    /// The base row (if the base check ran), the setup row (if a setup
    /// ran or was seeded), the slices in plan order, then the integration.
    pub rows: Vec<Row>,
}

/// The timeline of the goal `events` record; `state` is what they fold to.
pub fn timeline(events: &[Event], state: &GoalState) -> Timeline {
    let mut b = Builder::new(state);
    for e in events {
        b.event(e);
    }
    b.finish()
}

/// The row a bar is open on, and since when.
struct Open {
    phase: Phase,
    start_ms: u64,
    label: String,
}

struct Track {
    row: Row,
    open: Option<Open>,
    attempt: u32,
    /// Since when the slice waits for its next attempt.
    ready_since: u64,
}

struct Builder {
    t0: Option<i128>,
    now: u64,
    tracks: Vec<Track>,
    index: HashMap<String, usize>,
}

const BASE: usize = 0;
const SETUP: usize = 1;

impl Builder {
    fn new(state: &GoalState) -> Builder {
        let track = |kind, status| Track {
            row: Row {
                kind,
                status,
                bars: Vec::new(),
                marks: Vec::new(),
            },
            open: None,
            attempt: 0,
            ready_since: 0,
        };
        let mut tracks = vec![track(RowKind::Base, None), track(RowKind::Setup, None)];
        let mut index = HashMap::new();
        for s in &state.slices {
            index.insert(s.id.clone(), tracks.len());
            tracks.push(track(RowKind::Slice(s.id.clone()), Some(s.status)));
        }
        tracks.push(track(RowKind::Integration, None));
        Builder {
            t0: None,
            now: 0,
            tracks,
            index,
        }
    }

    fn slice(&mut self, id: &str) -> Option<&mut Track> {
        let i = *self.index.get(id)?;
        self.tracks.get_mut(i)
    }

    /// The row of gates without a slice: the integration's. (The base
    /// check's are recorded together, in `base_checked`.)
    fn unsliced(&mut self) -> &mut Track {
        let last = self.tracks.len() - 1;
        &mut self.tracks[last]
    }

    /// Milliseconds from the goal's start to `ts`, never before the last
    /// event's (the clock only moves forward).
    fn clock(&mut self, ts: &str) -> u64 {
        let at = match (parse_ms(ts), self.t0) {
            (Some(t), Some(t0)) => u64::try_from(t - t0).unwrap_or(0).max(self.now),
            (Some(t), None) => {
                self.t0 = Some(t);
                0
            }
            (None, _) => self.now,
        };
        self.now = at;
        at
    }

    fn event(&mut self, e: &Event) {
        let at = self.clock(&e.ts);
        match &e.body {
            EventBody::GoalResumed { .. } => {
                // The last controller stopped without closing what ran;
                // its bars end where its log did, and waiting starts again.
                let before = self.now;
                for t in &mut self.tracks {
                    t.close(before, false, Some("interrupted"));
                    t.ready_since = at;
                }
            }
            EventBody::SetupReady {
                slice,
                setup,
                how,
                duration_ms,
                ..
            } => self.setup_ready(slice.as_deref(), setup, *how, *duration_ms, at),
            EventBody::GoalRetried { slices, .. } => {
                for id in slices {
                    if let Some(t) = self.slice(id) {
                        t.ready_since = at;
                    }
                }
            }
            EventBody::SliceStarted { slice, attempt, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, false, None);
                    t.push(Phase::Waiting, t.ready_since, at, false, "waiting".into());
                    if *attempt > 1 {
                        t.row.marks.push(Mark {
                            at_ms: at,
                            label: format!("attempt {attempt}"),
                        });
                    }
                    t.attempt = *attempt;
                    t.open(Phase::Agent, at, format!("agent, attempt {attempt}"));
                }
            }
            EventBody::AgentFinished { slice, report, .. } => {
                if let Some(t) = self.slice(slice) {
                    let failed = report.exit != AgentExit::Ok;
                    let label = format!("agent: {}", report.exit);
                    t.close(at, failed, Some(&label));
                    t.open(Phase::Commit, at, "commit".into());
                }
            }
            EventBody::SliceCommitted { slice, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, false, None);
                    t.open(Phase::GateQueued, at, "gate queued".into());
                }
            }
            EventBody::GatesDeferred { slice, behind, .. } => {
                if let Some(Open { label, .. }) = self.slice(slice).and_then(|t| t.open.as_mut()) {
                    *label = format!("gates held behind `{behind}`, which it conflicts with");
                }
            }
            EventBody::GateStarted { .. }
            | EventBody::GateFinished { .. }
            | EventBody::Verified { .. }
            | EventBody::BaseChecked { .. } => self.gate_event(&e.body, at),
            EventBody::SliceMerged { slice, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, false, Some("merged"));
                }
            }
            EventBody::MergeConflict { slice, paths, .. } => {
                if let Some(t) = self.slice(slice) {
                    let label = format!("conflict on {}", paths.join(", "));
                    // Found before the gates, the conflict ends the queue:
                    // it shows as an instant, failed merge.
                    if t.open.as_ref().is_some_and(|o| o.phase != Phase::Merge) {
                        t.close(at, false, None);
                    }
                    if t.open.is_none() {
                        t.open(Phase::Merge, at, String::new());
                    }
                    t.close(at, true, Some(&label));
                }
            }
            EventBody::SliceFailed { slice, reason, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, true, Some(reason));
                }
            }
            EventBody::SliceBlocked { slice, reason } => {
                if let Some(t) = self.slice(slice) {
                    t.push(Phase::Waiting, t.ready_since, at, true, reason.clone());
                }
            }
            EventBody::SliceRetrying { slice, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, true, None);
                    t.ready_since = at;
                }
            }
            EventBody::SliceEjected { slice, gate, .. } => {
                if let Some(t) = self.slice(slice) {
                    t.row.marks.push(Mark {
                        at_ms: at,
                        label: format!("ejected: integration gate {gate} failed on its merge"),
                    });
                }
            }
            EventBody::IntegrationAdvanced { commit, .. } => {
                let last = self.tracks.len() - 1;
                self.tracks[last].row.marks.push(Mark {
                    at_ms: at,
                    label: format!(
                        "integration branch advanced to {}",
                        crate::words::short(commit)
                    ),
                });
            }
            EventBody::GoalFinished { .. } => {
                for t in &mut self.tracks {
                    t.close(at, false, None);
                }
            }
            _ => {}
        }
    }

    /// A gate started or ended on a slice, the integration or the base.
    fn gate_event(&mut self, body: &EventBody, at: u64) {
        match body {
            EventBody::GateStarted { slice, gate, .. } => {
                let t = match slice {
                    Some(s) => self.slice(s),
                    None => Some(self.unsliced()),
                };
                if let Some(t) = t {
                    t.close(at, false, None);
                    t.open(Phase::Gate, at, format!("gate {gate}"));
                }
            }
            EventBody::GateFinished { slice, result, .. } => {
                let t = match slice {
                    Some(s) => self.slice(s),
                    None => Some(self.unsliced()),
                };
                if let Some(t) = t {
                    let mut label = format!("gate {}: {}", result.name, result.outcome);
                    if result.cached {
                        label += " (cached)";
                    }
                    t.close(at, !result.passed, Some(&label));
                    if slice.is_some() {
                        t.open(Phase::GateQueued, at, "gate queued".into());
                    }
                }
            }
            EventBody::Verified {
                slice: Some(slice),
                passed,
                interrupted,
                ..
            } => {
                if let Some(t) = self.slice(slice) {
                    t.close(at, false, None);
                    if *passed && !interrupted {
                        t.open(Phase::Merge, at, "merge".into());
                    }
                }
            }
            EventBody::BaseChecked { gates, .. } => {
                // Recorded once, when all of them ran, one after the other:
                // each bar ends where the next one starts.
                let base = &mut self.tracks[BASE];
                let mut end = at;
                let mut bars = Vec::new();
                for g in gates.iter().rev() {
                    let start = end.saturating_sub(g.duration_ms);
                    bars.push((start, end, g));
                    end = start;
                }
                for (start, end, g) in bars.into_iter().rev() {
                    let mut label = format!("gate {} on the base: {}", g.name, g.outcome);
                    if g.cached {
                        label += " (cached)";
                    }
                    base.push(Phase::Gate, start, end, !g.passed, label);
                }
            }
            _ => {}
        }
    }

    /// A setup's bar, on the setup row: from when it began to `at`.
    fn setup_ready(
        &mut self,
        slice: Option<&str>,
        setup: &str,
        how: crate::setup::How,
        duration_ms: u64,
        at: u64,
    ) {
        // Without a slice, it was for the base check until the base was
        // checked and a slice started; then for the integration.
        let base =
            self.tracks[BASE].row.bars.is_empty() && self.tracks.iter().all(|t| t.attempt == 0);
        let whose = match slice {
            Some(id) => id,
            None if base => "the base check",
            None => "the integration's gates",
        };
        let how = match how {
            crate::setup::How::Ran => "ran",
            crate::setup::How::Seeded => "seeded",
        };
        let label = format!("{setup} {how} for {whose}");
        self.tracks[SETUP].push(
            Phase::Setup,
            at.saturating_sub(duration_ms),
            at,
            false,
            label,
        );
    }

    fn finish(mut self) -> Timeline {
        let end = self.now;
        for t in &mut self.tracks {
            t.close(end, false, Some("still going"));
        }
        let rows = self
            .tracks
            .into_iter()
            .map(|t| t.row)
            .filter(|r| !(matches!(r.kind, RowKind::Base | RowKind::Setup) && r.bars.is_empty()))
            .collect();
        Timeline { span_ms: end, rows }
    }
}

impl Track {
    fn open(&mut self, phase: Phase, at: u64, label: String) {
        self.open = Some(Open {
            phase,
            start_ms: at,
            label,
        });
    }

    /// Ends the open bar at `at`, if there is one; `label` replaces its own.
    fn close(&mut self, at: u64, failed: bool, label: Option<&str>) {
        if let Some(open) = self.open.take() {
            let label = label.map_or(open.label, str::to_string);
            self.push(open.phase, open.start_ms, at, failed, label);
        }
    }

    /// Adds a bar; an empty stretch of waiting or queueing is left out (an
    /// instant agent, commit or merge still shows).
    fn push(&mut self, phase: Phase, start_ms: u64, end_ms: u64, failed: bool, label: String) {
        let end_ms = end_ms.max(start_ms);
        if end_ms == start_ms && matches!(phase, Phase::Waiting | Phase::GateQueued) && !failed {
            return;
        }
        self.row.bars.push(Bar {
            phase,
            attempt: self.attempt,
            start_ms,
            end_ms,
            failed,
            label,
        });
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
fn parse_ms(ts: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests;
