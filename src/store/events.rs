//! The goal's event log: append-only JSON Lines, one writer, fsync per event.
//!
//! Every actor reports what it did as an [`EventBody`]; the supervisor stamps
//! it with a sequence number and time, appends it here, and folds it into the
//! goal's state (`state::GoalState::apply`). The log alone is enough to
//! rebuild the state, so it is what `replay` reads.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent;
use crate::error::{Error, IoContext, Result};
use crate::gate::{GateResult, GateSpec};
use crate::plan::Plan;
use crate::state::{Deliver, GoalStatus, Limits, SliceStatus};

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
        gate: String,
        tree: String,
    },
    /// A gate ended.
    GateFinished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        result: GateResult,
    },
    /// All gates of a slice (or of the integration) were run, up to the first failure.
    Verified {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
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
        slice_commit: String,
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
    },
    /// The integration gates passed on this candidate commit: the
    /// integration branch moved forward to it.
    IntegrationAdvanced { commit: String, tree: String },
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
    /// `--deliver ff` moved the base branch, or said why not.
    Delivery {
        branch: String,
        delivered: bool,
        reason: String,
    },
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

    /// The raised limits, in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.max_attempts {
            parts.push(format!("{n} attempts per slice"));
        }
        if let Some(ms) = self.budget_time_ms {
            parts.push(format!(
                "a time budget of {}",
                crate::util::human_duration(std::time::Duration::from_millis(ms))
            ));
        }
        if let Some(t) = self.budget_tokens {
            parts.push(format!("a token budget of {t}"));
        }
        if let Some(usd) = self.budget_usd {
            parts.push(format!("a budget of ${usd:.2}"));
        }
        parts.join(", ")
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

/// The names of gate results, for a line.
fn names(gates: &[GateResult]) -> String {
    gates
        .iter()
        .map(|g| format!("{} {}", g.name, if g.passed { "passed" } else { "failed" }))
        .collect::<Vec<_>>()
        .join(", ")
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
            | EventBody::MergeConflict { slice, .. } => Some(slice),
            EventBody::GateStarted { slice, .. }
            | EventBody::GateFinished { slice, .. }
            | EventBody::Verified { slice, .. } => slice.as_deref(),
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
            EventBody::SliceRetrying { .. } => "slice_retrying",
            EventBody::BaseChecked { .. } => "base_checked",
            EventBody::BudgetExhausted { .. } => "budget_exhausted",
            EventBody::IntegrationStarted { .. } => "integration_started",
            EventBody::IntegrationAdvanced { .. } => "integration_advanced",
            EventBody::SliceEjected { .. } => "slice_ejected",
            EventBody::Delivery { .. } => "delivery",
            EventBody::GoalFinished { .. } => "goal_finished",
        }
    }

    /// One line for people, used by the progress reporter and `replay`.
    pub fn describe(&self) -> String {
        let short = |sha: &str| sha.chars().take(10).collect::<String>();
        match self {
            EventBody::GoalStarted {
                goal,
                plan,
                base_commit,
                agent,
                ..
            } => format!(
                "goal started: \"{goal}\" — {} slices from {} with {agent}",
                plan.slices.len(),
                short(base_commit)
            ),
            EventBody::GoalResumed { pid, raised } if raised.is_empty() => {
                format!("goal resumed by process {pid}")
            }
            EventBody::GoalResumed { pid, raised } => {
                format!("goal resumed by process {pid}, with {}", raised.describe())
            }
            EventBody::GoalRetried { slices, .. } => match slices.is_empty() {
                true => "goal retried: the integration gates run again".into(),
                false => format!("goal retried: fresh attempts for {}", slices.join(", ")),
            },
            EventBody::SliceStarted {
                attempt,
                start_commit,
                conflict_paths,
                sparse,
                work_from,
                ..
            } => {
                let mut s = format!("attempt {attempt} started from {}", short(start_commit));
                if let Some(from) = work_from {
                    s += &format!(", going on from its last commit {}", short(from));
                }
                if let Some(dirs) = sparse {
                    s += &format!(" in a sparse worktree of {}", dirs.join(", "));
                }
                if !conflict_paths.is_empty() {
                    s += &format!(" (after conflict on {})", conflict_paths.join(", "));
                }
                s
            }
            EventBody::AgentUpdate { update, .. } => match update {
                agent::Update::Session { id } => format!("agent session {id}"),
                agent::Update::Usage {
                    tokens_in,
                    tokens_out,
                } => match tokens_out {
                    Some(out) => format!("agent usage: {tokens_in} tokens in, {out} out"),
                    None => format!("agent usage: {tokens_in} tokens in context"),
                },
                agent::Update::Approval { request, decision } => format!(
                    "{} {}{} ({})",
                    if decision.allow { "allowed" } else { "DENIED" },
                    request.tool,
                    request
                        .command
                        .as_ref()
                        .map(|c| format!(" `{c}`"))
                        .or_else(|| (!request.paths.is_empty())
                            .then(|| format!(" {}", request.paths.join(", "))))
                        .unwrap_or_default(),
                    decision.rule
                ),
            },
            EventBody::AgentRetry {
                retry,
                delay_ms,
                reason,
                ..
            } => {
                format!("agent failed ({reason}); retry {retry} in {delay_ms}ms")
            }
            EventBody::BudgetExhausted { reason } => format!("budget exhausted: {reason}"),
            EventBody::BaseChecked {
                passed: true,
                gates,
            } => {
                format!("the base passes the slice gates ({})", names(gates))
            }
            EventBody::BaseChecked {
                passed: false,
                gates,
            } => {
                format!(
                    "the base FAILS the slice gates ({}); no agent starts",
                    names(gates)
                )
            }
            EventBody::SliceRetrying { attempt, cause, .. } => {
                let why = match cause {
                    RetryCause::Gate { gate } => format!("gate `{gate}` failed"),
                    RetryCause::Scope => "its commit was refused".to_string(),
                    RetryCause::Conflict => "it conflicted".to_string(),
                    RetryCause::Integration { gate, .. } => {
                        format!("integration gate `{gate}` failed with it merged")
                    }
                };
                format!("attempt {attempt}: {why}; another attempt, told what went wrong")
            }
            EventBody::AgentFinished { report, .. } => format!(
                "agent finished: {} after {}",
                report.exit,
                crate::util::human_duration(std::time::Duration::from_millis(report.duration_ms))
            ),
            EventBody::SliceCommitted {
                commit,
                changed_files,
                ..
            } => format!(
                "committed {} ({} file{})",
                short(commit),
                changed_files.len(),
                if changed_files.len() == 1 { "" } else { "s" }
            ),
            EventBody::SliceFailed { status, reason, .. } => format!("{status}: {reason}"),
            EventBody::SliceBlocked { reason, .. } => format!("blocked: {reason}"),
            EventBody::CheckoutTouched { evidence, .. } => {
                format!("CHANGED THE USER'S REPOSITORY: {}", evidence.join("; "))
            }
            EventBody::GateStarted { gate, tree, .. } => {
                format!("gate {gate} started on tree {}", short(tree))
            }
            EventBody::GateFinished { result, .. } if result.cached => format!(
                "gate {} {} (cached: it passed on this tree in goal {}; log {})",
                result.name,
                if result.passed { "passed" } else { "FAILED" },
                result.from_goal.as_deref().unwrap_or("an earlier goal"),
                result.log.display()
            ),
            EventBody::GateFinished { result, .. } => format!(
                "gate {} {} ({}, {}ms)",
                result.name,
                if result.passed { "passed" } else { "FAILED" },
                result.outcome,
                result.duration_ms
            ),
            EventBody::Verified {
                interrupted: true, ..
            } => "gates interrupted: they run again on resume".into(),
            EventBody::Verified { passed, .. } => {
                if *passed {
                    "verified".into()
                } else {
                    "verification failed".into()
                }
            }
            EventBody::SliceMerged { commit, .. } => {
                format!("merged into the candidate as {}", short(commit))
            }
            EventBody::MergeConflict { attempt, paths, .. } => {
                format!("attempt {attempt} conflicts on {}", paths.join(", "))
            }
            EventBody::IntegrationStarted { commit, tree, .. } => format!(
                "integration gates start on candidate {} (tree {})",
                short(commit),
                short(tree)
            ),
            EventBody::IntegrationAdvanced { commit, .. } => format!(
                "integration gates passed: the integration branch moves to {}",
                short(commit)
            ),
            EventBody::SliceEjected {
                gate,
                tree,
                remerge,
                ..
            } => {
                let mut s = format!(
                    "taken out of the candidate: integration gate `{gate}` first fails with it merged (tree {})",
                    short(tree)
                );
                if !remerge.is_empty() {
                    s += &format!("; {} merge again", remerge.join(", "));
                }
                s
            }
            EventBody::Delivery {
                branch,
                delivered,
                reason,
            } => {
                if *delivered {
                    format!("delivered: {branch} fast-forwarded")
                } else {
                    format!("not delivered to {branch}: {reason}")
                }
            }
            EventBody::GoalFinished { status, reason } => match reason {
                Some(r) => format!("goal finished: {status} — {r}"),
                None => format!("goal finished: {status}"),
            },
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
    /// event) was never acted upon, so it is dropped.
    pub fn open(path: &Path) -> Result<(EventLog, Vec<Event>)> {
        let bytes =
            std::fs::read(path).context(|| format!("reading event log {}", path.display()))?;
        let mut events = Vec::new();
        let mut good_len = 0;
        let mut last_hash = String::new();
        for raw in bytes.split_inclusive(|b| *b == b'\n') {
            let Some(line) = raw.strip_suffix(b"\n") else {
                break;
            };
            let Ok(event) = serde_json::from_slice::<Event>(line) else {
                break;
            };
            good_len += raw.len();
            last_hash = line_hash(line);
            events.push(event);
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .context(|| format!("opening event log {}", path.display()))?;
        if good_len < bytes.len() {
            file.set_len(good_len as u64)
                .and_then(|_| file.sync_all())
                .context(|| format!("dropping the torn last line of {}", path.display()))?;
        }
        let next_seq = events.last().map_or(1, |e| e.seq + 1);
        Ok((
            EventLog {
                file,
                path: path.to_path_buf(),
                next_seq,
                last_hash,
            },
            events,
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

/// Reads every event of the log at `path`, in order.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let file = File::open(path).context(|| format!("opening event log {}", path.display()))?;
    let mut events = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line).map_err(|e| {
            Error::io(
                format!("{} line {}: not a valid event", path.display(), i + 1),
                e.into(),
            )
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Checks the log's chain: sequence numbers without gaps, each event
/// carrying the hash of the line before it. Returns every line's hash, or
/// the first break found.
pub fn check_chain(path: &Path) -> Result<Result<Vec<String>, String>> {
    let bytes = std::fs::read(path).context(|| format!("reading event log {}", path.display()))?;
    let mut hashes: Vec<String> = Vec::new();
    for (i, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let Some(line) = raw.strip_suffix(b"\n") else {
            return Ok(Err(format!("line {} is cut short (no newline)", i + 1)));
        };
        let event: Event = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("line {} is not a valid event: {e}", i + 1))),
        };
        if event.seq != i as u64 + 1 {
            return Ok(Err(format!(
                "line {} has seq {}, expected {}",
                i + 1,
                event.seq,
                i + 1
            )));
        }
        if event.prev != hashes.last().map_or("", String::as_str) {
            return Ok(Err(format!(
                "event {} does not follow the line before it (its prev hash differs): the log was edited",
                event.seq
            )));
        }
        hashes.push(line_hash(line));
    }
    Ok(Ok(hashes))
}
