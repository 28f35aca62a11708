//! The limits and settings a goal runs under, recorded in `goal_started`.

use serde::{Deserialize, Serialize};

/// Run limits fixed when the goal started, recorded in `goal_started` so a
/// resumed goal runs under the same ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub slice_timeout_ms: u64,
    pub inactivity_timeout_ms: u64,
    pub gate_concurrency: usize,
    /// How many cores the gates may keep busy together (absent in logs of
    /// older versions: the machine's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_cpus: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Extra directories agents may write (`[sandbox] writable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_writable: Vec<String>,
    /// Extra environment variables agents may see (`[sandbox] env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_env: Vec<String>,
    /// Paths agents and gates may read that the sandbox hides otherwise
    /// (`[sandbox] readable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_readable: Vec<String>,
    /// The network of agents and gates: isolated (absent) with the hosts
    /// allowed, or open.
    #[serde(
        default,
        skip_serializing_if = "crate::sandbox::NetworkSettings::is_default"
    )]
    pub network: crate::sandbox::NetworkSettings,
    /// Variables naming a build cache kept per worktree slot (`[pool] cache`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slot_cache: Vec<String>,
    /// Untracked paths a slot keeps when it is recycled (`[pool] keep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slot_keep: Vec<String>,
    /// The most the worktree pool may take on disk (`[pool] max_disk`);
    /// absent: half of what it could take (its size and the free space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max_disk: Option<u64>,
    /// What installs the dependencies in a slot (`[[setup]]`); their
    /// outputs are in `slot_keep` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setups: Vec<crate::setup::SetupSpec>,
    /// `--sparse`: set, with the directories every sparse slot also
    /// materializes (`[sparse] include`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<String>>,
    /// `--require-sandbox`: refuse to run agents and gates that cannot be
    /// fully confined, on resume too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_sandbox: bool,
    /// Run the slice gates on the base commit before any agent starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base_check: bool,
    /// Run every gate, even on a tree it already passed, and keep no result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_gate_cache: bool,
    /// How much of each agent's and gate's output its log keeps, when not
    /// the default (`[run] log_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_limit: Option<u64>,
    /// Who the commits slices contribute are by (`[commit] author`);
    /// absent: the repository's configured identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// Where slice attempts run; absent: on this machine.
    #[serde(default, skip_serializing_if = "crate::executor::Executor::is_local")]
    pub executor: crate::executor::Executor,
}

/// What a model's tokens cost (`[[price]]` in `omk.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The model name the agent uses.
    pub model: String,
    /// US dollars per million input tokens.
    pub input_per_million: f64,
    /// US dollars per million output tokens.
    pub output_per_million: f64,
}

impl Price {
    /// The cost of a number of tokens.
    pub fn usd(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input_per_million + tokens_out as f64 * self.output_per_million)
            / 1e6
    }
}
