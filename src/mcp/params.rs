//! What each tool takes: the input schemas a model reads, each field
//! described.

use rmcp::schemars::JsonSchema;
use serde::Deserialize;

/// `goal_plan`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct PlanParams {
    /// What the goal should achieve, in words.
    pub goal: String,
    /// How many slices at most (at least 1).
    pub slices: u32,
    /// The planning agent: kimi (default), kimi-wire, kimi-print, acp:<command>, exec:<command>.
    pub agent: Option<String>,
    /// The commit to plan against (default HEAD).
    pub base: Option<String>,
    /// Also write the plan to this file, a path inside the repository.
    pub out: Option<String>,
}

/// `goal_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct RunParams {
    /// What the goal should achieve, in words.
    pub goal: String,
    /// A plan object, as goal_plan returns it: {"slices": [{"id", "title", "prompt", "write_scope": [globs], "depends_on": [ids]}]}.
    pub plan: Option<serde_json::Value>,
    /// A plan file (JSON or TOML), a path inside the repository.
    pub plan_file: Option<String>,
    /// Without a plan: how many slices the agent plans at most. With one: defaults to its count.
    pub slices: Option<u32>,
    /// The agent in each slice: kimi (default), kimi-wire, kimi-print, acp:<command>, exec:<command>.
    pub agent: Option<String>,
    /// The commit every slice starts from (default HEAD).
    pub base: Option<String>,
    /// How many slices run at once, each an agent process (default: the number of slices, at most 16).
    pub concurrency: Option<u32>,
    /// How many attempts each slice gets (default from omk.toml, else 3).
    pub max_attempts: Option<u32>,
    /// Where the result goes when ready: branch (default), ff, push, pr, land.
    pub deliver: Option<String>,
    /// Run even though the repository has no gates (nothing would be verified).
    pub allow_no_gates: Option<bool>,
    /// Wait for the goal to end, with progress notifications, instead of returning its id at once.
    pub wait: Option<bool>,
}

/// Tools about one goal, the latest by default.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct GoalParams {
    /// The goal: its id, a unique prefix of it, or `latest` (default).
    pub goal_id: Option<String>,
}

/// Tools that act on one goal, named.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct GoalIdParams {
    /// The goal: its id, a unique prefix of it, or `latest`.
    pub goal_id: String,
}

/// `goal_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct EventsParams {
    /// The goal: its id, a unique prefix of it, or `latest` (default).
    pub goal_id: Option<String>,
    /// Only events with a greater sequence number (default 0: all).
    pub after: Option<u64>,
}

/// `goal_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct LogsParams {
    /// The goal: its id, a unique prefix of it, or `latest` (default).
    pub goal_id: Option<String>,
    /// The slice whose logs to show.
    pub slice: Option<String>,
    /// Every failed step of the goal, with the excerpt where it fails.
    pub failed: Option<bool>,
    /// Which attempt of the slice (default the last).
    pub attempt: Option<u32>,
}

/// `goal_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct DiffParams {
    /// The goal: its id, a unique prefix of it, or `latest` (default).
    pub goal_id: Option<String>,
    /// The slice, or `integration` for the whole goal against its base.
    pub slice: String,
    /// Only the changed files and their line counts.
    pub stat: Option<bool>,
    /// Which attempt of the slice (default the one that counts).
    pub attempt: Option<u32>,
}

/// `goal_proof`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProofParams {
    /// The goal: its id, a unique prefix of it, or `latest` (default).
    pub goal_id: Option<String>,
    /// Markdown, as a pull request shows it, instead of JSON.
    pub markdown: Option<bool>,
}

/// `goal_retry`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct RetryParams {
    /// The goal: its id, a unique prefix of it, or `latest`.
    pub goal_id: String,
    /// The slices to retry (default: every one that did not merge).
    pub slices: Option<Vec<String>>,
    /// How many more attempts each gets (default: the goal's own limit).
    pub max_attempts: Option<u32>,
}

/// `goal_deliver`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct DeliverParams {
    /// The goal: its id, a unique prefix of it, or `latest`.
    pub goal_id: String,
    /// branch, ff, push, pr or land.
    pub to: String,
    /// Deliver one commit on top of the base with the integration tree.
    pub squash: Option<bool>,
}
