//! `omk.toml` as written: the entries serde reads, before they are checked.

use serde::Deserialize;

use super::Price;
use crate::gate::GateScope;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) gate: Vec<GateEntry>,
    #[serde(default)]
    pub(super) setup: Vec<SetupEntry>,
    #[serde(default)]
    pub(super) run: RunEntry,
    #[serde(default)]
    pub(super) policy: PolicyEntry,
    #[serde(default)]
    pub(super) price: Vec<Price>,
    #[serde(default)]
    pub(super) sandbox: SandboxEntry,
    #[serde(default)]
    pub(super) pool: PoolEntry,
    #[serde(default)]
    pub(super) sparse: SparseEntry,
    #[serde(default)]
    pub(super) executor: ExecutorEntry,
    #[serde(default)]
    pub(super) commit: CommitEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupEntry {
    pub(super) name: String,
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) inputs: Vec<String>,
    #[serde(default)]
    pub(super) outputs: Vec<String>,
    #[serde(default)]
    pub(super) allow_hosts: Vec<String>,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommitEntry {
    /// `Name <email>`.
    pub(super) author: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecutorEntry {
    /// `local` (the default) or `slurm`.
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) slurm: crate::executor::slurm::Settings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SparseEntry {
    #[serde(default)]
    pub(super) include: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoolEntry {
    #[serde(default)]
    pub(super) cache: Vec<String>,
    #[serde(default)]
    pub(super) keep: Vec<String>,
    #[serde(default)]
    pub(super) max_disk: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SandboxEntry {
    #[serde(default)]
    pub(super) writable: Vec<String>,
    #[serde(default)]
    pub(super) env: Vec<String>,
    #[serde(default)]
    pub(super) readable: Vec<String>,
    #[serde(default)]
    pub(super) allow_hosts: Vec<String>,
    /// `isolated` (the default) or `open`.
    pub(super) network: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyEntry {
    #[serde(default)]
    pub(super) deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GateEntry {
    pub(super) name: String,
    pub(super) command: Option<String>,
    /// `command` (the default) or `review`.
    pub(super) kind: Option<String>,
    /// A review's agent, as `--agent` names one (default: the goal's).
    pub(super) agent: Option<String>,
    /// A review's instructions: a file of the repository, else the text.
    pub(super) instructions: Option<String>,
    /// Shipped review instructions: `security`.
    pub(super) preset: Option<String>,
    /// Tokens after which a review is stopped.
    pub(super) max_tokens: Option<u64>,
    pub(super) timeout: Option<String>,
    #[serde(default)]
    pub(super) scope: GateScope,
    #[serde(default)]
    pub(super) writable: Vec<String>,
    #[serde(default)]
    pub(super) env: Vec<String>,
    pub(super) cpus: Option<usize>,
    #[serde(default)]
    pub(super) allow_hosts: Vec<String>,
    /// The pull request check whose failures this gate reproduces.
    pub(super) ci: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunEntry {
    pub(super) slice_timeout: Option<String>,
    pub(super) inactivity_timeout: Option<String>,
    pub(super) model: Option<String>,
    pub(super) max_attempts: Option<u32>,
    pub(super) log_limit: Option<String>,
    pub(super) gate_cpus: Option<usize>,
}

/// A size such as `64MiB`, `512KiB`, `1GiB` or a number of bytes.
pub(super) fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 64MiB, 512KiB or 1GiB"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" | "KB" => 10,
        "MiB" | "M" | "MB" => 20,
        "GiB" | "G" | "GB" => 30,
        _ => return Err(format!("`{text}`: unknown unit; use KiB, MiB or GiB")),
    };
    match n.checked_shl(shift).filter(|v| v >> shift == n) {
        Some(v) if v >= 1024 => Ok(v),
        Some(_) => Err(format!("`{text}` is too small; keep at least 1KiB")),
        None => Err(format!("`{text}` is too big")),
    }
}
