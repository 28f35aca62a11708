//! The goal's event log: append-only JSON Lines, one writer, fsync per event.
//!
//! Every actor reports what it did as an [`EventBody`]; the supervisor stamps
//! it with a sequence number and time, appends it here, and folds it into the
//! goal's state (`state::GoalState::apply`). The log alone is enough to
//! rebuild the state, so it is what `replay` reads.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent;
use crate::error::{Error, IoContext, Result};
use crate::gate::{GateResult, GateSpec};
use crate::plan::Plan;
use crate::store::kinds::{Deliver, DeliverOptions, Delivery, GoalStatus, Limits, SliceStatus};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, … without gaps.
    pub seq: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub ts: String,
    /// The SHA-256 of the previous line as written (empty for the first), so
    /// an edited, reordered or cut log is detected.
    #[serde(default)]
    pub prev: String,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened. Serialized with its `kind` and, when it concerns one, its `slice`.
// `goal_started` is large and happens once per goal; boxing it would only
// complicate every match on the others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// The goal was created; carries everything needed to rebuild its state.
    GoalStarted {
        goal_id: String,
        goal: String,
        repository: PathBuf,
        base_commit: String,
        base_tree: String,
        base_ref: Option<String>,
        integration_branch: String,
        plan: Plan,
        agent: String,
        gates: Vec<GateSpec>,
        allow_no_gates: bool,
        max_attempts: u32,
        concurrency: usize,
        deliver: Deliver,
        #[serde(default, skip_serializing_if = "DeliverOptions::is_default")]
        deliver_options: DeliverOptions,
        #[serde(default)]
        limits: Limits,
    },
    /// A new controller took the goal over after the last one stopped.
    GoalResumed {
        pid: u32,
        /// Limits raised for the rest of the goal.
        #[serde(default, skip_serializing_if = "Raised::is_empty")]
        raised: Raised,
    },
    /// `goal retry`: an ended goal goes on, these slices with fresh attempts.
    GoalRetried {
        /// The slices that get attempts again.
        slices: Vec<String>,
        /// The goal's attempt limit from now on (raised so each gets more).
        max_attempts: u32,
    },
    /// An attempt of a slice was started.
    SliceStarted {
        slice: String,
        attempt: u32,
        start_commit: String,
        branch: String,
        worktree: PathBuf,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conflict_paths: Vec<String>,
        /// The agent session this attempt resumes (an interrupted attempt of
        /// a backend that can resume one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_session: Option<String>,
        /// The directories the worktree materializes (`--sparse`); absent
        /// for a full checkout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sparse: Option<Vec<String>>,
        /// The commit the worktree starts from when it is not
        /// `start_commit`: a feedback attempt goes on from the failed
        /// attempt's own commit, and is still judged against `start_commit`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_from: Option<String>,
    },
    /// The agent reported something while running.
    AgentUpdate {
        slice: String,
        attempt: u32,
        update: agent::Update,
    },
    /// The agent failed in a way worth retrying; the goal backs off and runs it again.
    AgentRetry {
        slice: String,
        attempt: u32,
        retry: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The agent process ended.
    AgentFinished {
        slice: String,
        attempt: u32,
        report: agent::Report,
    },
    /// What the agent did was committed on the slice's branch.
    SliceCommitted {
        slice: String,
        attempt: u32,
        commit: String,
        tree: String,
        changed_files: Vec<String>,
        /// Its gates ran with it, where it ran (a cluster job): their
        /// `gate_finished` and `verified` follow, and no gate job is sent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gated: bool,
    },
    /// The attempt ended without a mergeable commit.
    SliceFailed {
        slice: String,
        attempt: u32,
        status: SliceStatus,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paths: Vec<String>,
    },
    /// The user's repository changed while an unsandboxed agent ran.
    CheckoutTouched {
        slice: String,
        attempt: u32,
        evidence: Vec<String>,
    },
    /// The slice cannot start because a dependency will never merge.
    SliceBlocked { slice: String, reason: String },
    /// A gate started on a slice's tree (or the integration's, without `slice`).
    GateStarted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        /// The slice's attempt judged (absent for the integration, and in
        /// logs written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        gate: String,
        tree: String,
    },
    /// A gate ended.
    GateFinished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        result: GateResult,
    },
    /// All gates of a slice (or of the integration) were run, up to the first failure.
    Verified {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        passed: bool,
        /// The run was cancelled while the gates ran: no verdict; they run
        /// again on resume.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
    },
    /// The slice's commit was merged onto the candidate: the merges the
    /// integration gates have not yet passed, on top of the integration
    /// branch.
    SliceMerged {
        slice: String,
        attempt: u32,
        /// What the slice contributes: one commit of its accepted tree on
        /// the commit it started from (in older logs, the attempt's own).
        slice_commit: String,
        /// The accepted attempt's commit, which stays local.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt_commit: Option<String>,
        commit: String,
        tree: String,
        /// The commit it was merged onto. A merge onto anything but the
        /// candidate's tip is stale (the candidate was rebuilt meanwhile)
        /// and changes nothing. Absent in logs from before candidates.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        onto: String,
    },
    /// The slice's commit conflicts with what is already integrated.
    MergeConflict {
        slice: String,
        attempt: u32,
        paths: Vec<String>,
        /// The commit it did not merge onto (see `slice_merged`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        onto: String,
        /// Found before its gates ran, which were skipped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        before_gates: bool,
    },
    /// The slice's gates wait: its commit conflicts with a slice that
    /// committed before it and is still on its way to the integration, so
    /// they would be spent for nothing if that one merges. They run once it
    /// has merged (then the conflict is the slice's verdict) or failed.
    GatesDeferred {
        slice: String,
        attempt: u32,
        /// The slice ahead of it.
        behind: String,
        paths: Vec<String>,
    },
    /// The integration gates passed on this candidate commit: the
    /// integration branch moved forward to it.
    IntegrationAdvanced {
        commit: String,
        tree: String,
        /// The branch was gone (deleted by someone) and was made again here.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recreated: bool,
    },
    /// The candidate failed an integration gate, and this slice's merge is
    /// the first whose tree fails it: the slice is taken out, the
    /// candidate goes back to the merge before it (which passed), and the
    /// slices merged after it are merged again.
    SliceEjected {
        slice: String,
        attempt: u32,
        /// The gate that failed.
        gate: String,
        /// The tree of the slice's merge, on which the gate failed.
        tree: String,
        /// The candidate commit the rest are merged onto again.
        onto: String,
        /// The slices merged after it, to merge again, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remerge: Vec<String>,
    },
    /// A slice's attempt failed in a way its agent can repair, and another
    /// attempt is due, told what went wrong.
    SliceRetrying {
        slice: String,
        /// The attempt that failed.
        attempt: u32,
        /// What went wrong.
        cause: RetryCause,
        /// What the next attempt's agent is told (its prompt and `OMK_FEEDBACK`).
        feedback: String,
        /// Where the next attempt's worktree starts: the failed commit, for a
        /// gate or scope failure; absent to start from the integration head.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_from: Option<String>,
    },
    /// The slice gates ran on the base commit, before any agent started.
    BaseChecked {
        passed: bool,
        gates: Vec<GateResult>,
    },
    /// A budget ran out: running agents are cancelled and no slice starts.
    BudgetExhausted { reason: String },
    /// Every slice is settled; the integration gates start on this tree.
    IntegrationStarted {
        commit: String,
        tree: String,
        worktree: PathBuf,
    },
    /// The goal's result was delivered (`--deliver`, `goal deliver`), or why not.
    Delivery(Delivery),
    /// The goal ended.
    GoalFinished {
        status: GoalStatus,
        reason: Option<String>,
    },
}

/// Limits a resumed goal runs under from now on, where they were raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Raised {
    /// Attempts per slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Wall-clock time for this run of the goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_time_ms: Option<u64>,
    /// Input plus output tokens over all agents, all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// US dollars over all agents, all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

impl Raised {
    /// Whether nothing is raised.
    pub fn is_empty(&self) -> bool {
        *self == Raised::default()
    }
}

/// What made a slice's attempt fail in a way another attempt can repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RetryCause {
    /// A gate failed on its commit.
    Gate {
        /// The gate.
        gate: String,
    },
    /// Its commit was refused: paths outside its write scope, an unsafe
    /// symlink, a changed `.git`.
    Scope,
    /// Its commit conflicts with what is already integrated.
    Conflict,
    /// Its merge is the first that made an integration gate fail.
    Integration {
        /// The gate.
        gate: String,
        /// The tree it failed on.
        tree: String,
    },
}

impl EventBody {
    /// The slice the event concerns, if any.
    pub fn slice(&self) -> Option<&str> {
        match self {
            EventBody::SliceStarted { slice, .. }
            | EventBody::AgentUpdate { slice, .. }
            | EventBody::AgentRetry { slice, .. }
            | EventBody::AgentFinished { slice, .. }
            | EventBody::SliceCommitted { slice, .. }
            | EventBody::SliceFailed { slice, .. }
            | EventBody::SliceBlocked { slice, .. }
            | EventBody::CheckoutTouched { slice, .. }
            | EventBody::SliceMerged { slice, .. }
            | EventBody::SliceRetrying { slice, .. }
            | EventBody::SliceEjected { slice, .. }
            | EventBody::MergeConflict { slice, .. }
            | EventBody::GatesDeferred { slice, .. } => Some(slice),
            EventBody::GateStarted { slice, .. }
            | EventBody::GateFinished { slice, .. }
            | EventBody::Verified { slice, .. } => slice.as_deref(),
            _ => None,
        }
    }

    /// The slice's attempt a report from a child concerns, if it says.
    pub fn attempt(&self) -> Option<u32> {
        match self {
            EventBody::AgentUpdate { attempt, .. }
            | EventBody::AgentRetry { attempt, .. }
            | EventBody::AgentFinished { attempt, .. }
            | EventBody::SliceCommitted { attempt, .. }
            | EventBody::SliceFailed { attempt, .. }
            | EventBody::CheckoutTouched { attempt, .. }
            | EventBody::SliceMerged { attempt, .. }
            | EventBody::MergeConflict { attempt, .. } => Some(*attempt),
            EventBody::GateStarted { attempt, .. }
            | EventBody::GateFinished { attempt, .. }
            | EventBody::Verified { attempt, .. } => *attempt,
            _ => None,
        }
    }

    /// The event's `kind` as it appears in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::GoalStarted { .. } => "goal_started",
            EventBody::GoalResumed { .. } => "goal_resumed",
            EventBody::GoalRetried { .. } => "goal_retried",
            EventBody::SliceStarted { .. } => "slice_started",
            EventBody::AgentUpdate { .. } => "agent_update",
            EventBody::AgentRetry { .. } => "agent_retry",
            EventBody::AgentFinished { .. } => "agent_finished",
            EventBody::SliceCommitted { .. } => "slice_committed",
            EventBody::SliceFailed { .. } => "slice_failed",
            EventBody::SliceBlocked { .. } => "slice_blocked",
            EventBody::CheckoutTouched { .. } => "checkout_touched",
            EventBody::GateStarted { .. } => "gate_started",
            EventBody::GateFinished { .. } => "gate_finished",
            EventBody::Verified { .. } => "verified",
            EventBody::SliceMerged { .. } => "slice_merged",
            EventBody::MergeConflict { .. } => "merge_conflict",
            EventBody::GatesDeferred { .. } => "gates_deferred",
            EventBody::SliceRetrying { .. } => "slice_retrying",
            EventBody::BaseChecked { .. } => "base_checked",
            EventBody::BudgetExhausted { .. } => "budget_exhausted",
            EventBody::IntegrationStarted { .. } => "integration_started",
            EventBody::IntegrationAdvanced { .. } => "integration_advanced",
            EventBody::SliceEjected { .. } => "slice_ejected",
            EventBody::Delivery(_) => "delivery",
            EventBody::GoalFinished { .. } => "goal_finished",
        }
    }
}

/// The single writer of a goal's event log.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
    next_seq: u64,
    last_hash: String,
}

/// The hex SHA-256 of one line (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl EventLog {
    /// Creates a new, empty log at `path`.
    pub fn create(path: &Path) -> Result<EventLog> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .context(|| format!("creating event log {}", path.display()))?;
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
            next_seq: 1,
            last_hash: String::new(),
        })
    }

    /// Opens an existing log to append to it, returning its events.
    ///
    /// A last line cut short by a crash (no newline, or not a complete
    /// event) was never acted upon, so it is dropped. A damaged line before
    /// the last is not a crash's doing: the log is refused, untouched.
    pub fn open(path: &Path) -> Result<(EventLog, Vec<Event>)> {
        let scan = Scan::of(path)?;
        scan.refuse_damage(path)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .context(|| format!("opening event log {}", path.display()))?;
        if scan.stop.is_some() {
            file.set_len(scan.good_len as u64)
                .and_then(|_| file.sync_all())
                .context(|| format!("dropping the torn last line of {}", path.display()))?;
        }
        let next_seq = scan.events.last().map_or(1, |e| e.seq + 1);
        let last_hash = scan.hashes.last().cloned().unwrap_or_default();
        Ok((
            EventLog {
                file,
                path: path.to_path_buf(),
                next_seq,
                last_hash,
            },
            scan.events,
        ))
    }

    /// Stamps `body`, appends it as one line and syncs it to disk.
    pub fn append(&mut self, body: EventBody) -> Result<Event> {
        let event = Event {
            seq: self.next_seq,
            ts: crate::util::now_rfc3339(),
            prev: self.last_hash.clone(),
            body,
        };
        let encode = |e: serde_json::Error| Error::json("encoding event", e);
        let mut json = serde_json::to_string(&event).map_err(encode)?;
        let mut event = event;
        // What agents and gates said is scrubbed, omk's own structure never
        // (the plan, scopes, ids, paths); `goal_started` is all structure.
        let scrub = !matches!(event.body, EventBody::GoalStarted { .. })
            && matches!(crate::redact::redact(&json), std::borrow::Cow::Owned(_));
        if scrub {
            let mut value = serde_json::to_value(&event).map_err(encode)?;
            if crate::redact::redact_json(&mut value) {
                json = serde_json::to_string(&value).map_err(encode)?;
                // The state folds exactly what the log holds.
                event = serde_json::from_value(value).map_err(encode)?;
            }
        }
        let mut line = json.into_bytes();
        let hash = line_hash(&line);
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .context(|| format!("appending to {}", self.path.display()))?;
        self.next_seq += 1;
        self.last_hash = hash;
        crate::fault::point("event");
        Ok(event)
    }

    /// The hash of the last line, for the proof to pin the log's end.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
}

/// The events of a log, for reading only (a goal that runs may be writing
/// its last line).
pub fn read(path: &Path) -> Result<Vec<Event>> {
    Scan::of(path)?.into_events(path)
}

/// Checks the log's chain: sequence numbers without gaps, each event
/// carrying the hash of the line before it. Returns every line's hash, or
/// the first break found.
pub fn check_chain(path: &Path) -> Result<Result<Vec<String>, String>> {
    let scan = Scan::of(path)?;
    Ok(scan.chain().map(|()| scan.hashes))
}

/// One reading of a log file, shared by [`EventLog::open`], [`read`] and
/// [`check_chain`], which differ only in what they tolerate.
#[derive(Debug)]
pub struct Scan {
    /// The whole, valid lines' events, in order, up to the first that is not.
    pub events: Vec<Event>,
    /// The SHA-256 of each of those lines, as written.
    pub hashes: Vec<String>,
    /// The bytes up to the end of the last of those lines.
    good_len: usize,
    /// Why reading stopped before the end of the file, if it did.
    pub stop: Option<Stop>,
}

/// Where and why a log's reading stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Line `line` (1-based) has no newline: the last, cut short.
    Torn { line: usize },
    /// Line `line` is not an event; `last` when nothing follows it.
    Invalid {
        line: usize,
        error: String,
        last: bool,
    },
}

impl Scan {
    /// Reads the log at `path`.
    pub fn of(path: &Path) -> Result<Scan> {
        let bytes =
            std::fs::read(path).context(|| format!("reading event log {}", path.display()))?;
        Ok(Scan::parse(&bytes))
    }

    /// Reads a log's bytes.
    pub fn parse(bytes: &[u8]) -> Scan {
        let mut scan = Scan {
            events: Vec::new(),
            hashes: Vec::new(),
            good_len: 0,
            stop: None,
        };
        for (i, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = raw.strip_suffix(b"\n") else {
                scan.stop = Some(Stop::Torn { line: i + 1 });
                break;
            };
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => {
                    scan.good_len += raw.len();
                    scan.hashes.push(line_hash(line));
                    scan.events.push(event);
                }
                Err(e) => {
                    scan.stop = Some(Stop::Invalid {
                        line: i + 1,
                        error: e.to_string(),
                        last: scan.good_len + raw.len() == bytes.len(),
                    });
                    break;
                }
            }
        }
        scan
    }

    /// The events, unless the log (at `path`) is damaged before its last line.
    pub fn into_events(self, path: &Path) -> Result<Vec<Event>> {
        self.refuse_damage(path)?;
        Ok(self.events)
    }

    /// Refuses a log damaged before its last line.
    fn refuse_damage(&self, path: &Path) -> Result<()> {
        match &self.stop {
            Some(Stop::Invalid {
                line,
                error,
                last: false,
            }) => Err(Error::Io {
                context: format!(
                    "event log {} line {line} is not a valid event ({error}), and more follows; omk leaves a damaged log as it is",
                    path.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::InvalidData),
            }),
            _ => Ok(()),
        }
    }

    /// The first break of the log's chain: a line that stopped the reading,
    /// a gap in the sequence numbers, or an event whose `prev` is not the
    /// hash of the line before it.
    pub fn chain(&self) -> Result<(), String> {
        for (i, event) in self.events.iter().enumerate() {
            if event.seq != i as u64 + 1 {
                return Err(format!(
                    "line {} has seq {}, expected {}",
                    i + 1,
                    event.seq,
                    i + 1
                ));
            }
            let before = match i {
                0 => "",
                _ => self.hashes[i - 1].as_str(),
            };
            if event.prev != before {
                return Err(format!(
                    "event {} does not follow the line before it (its prev hash differs): the log was edited",
                    event.seq
                ));
            }
        }
        match &self.stop {
            None => Ok(()),
            Some(Stop::Torn { line }) => Err(format!("line {line} is cut short (no newline)")),
            Some(Stop::Invalid { line, error, .. }) => {
                Err(format!("line {line} is not a valid event: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
