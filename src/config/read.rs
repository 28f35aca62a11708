//! Reading `omk.toml` into a [`Config`]: every field checked, every
//! problem named at once.

use super::file::File;
use super::*;

impl Config {
    /// Parses `omk.toml` (shown as `path`) as `read` finds it, or detects.
    pub(super) fn parse(path: PathBuf, read: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let Some(text) = read(FILE_NAME) else {
            return Ok(detect::detected(&read));
        };
        // A file serde cannot read says so once: where, and what it expected.
        let file: File = toml::from_str(&text).map_err(|e| Error::Config {
            file: path.clone(),
            reason: e.to_string().trim().to_string(),
        })?;
        let mut problems = Vec::new();
        let config = checked(file, &path, &read, &mut problems);
        let reason = match problems.as_slice() {
            [] => return Ok(config),
            [one] => one.clone(),
            many => format!(
                "{} problems:\n{}",
                many.len(),
                many.iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        Err(Error::Config { file: path, reason })
    }
}

/// `value`, or `default` with what is wrong noted in `problems`.
fn or_note<T>(value: std::result::Result<T, String>, default: T, problems: &mut Vec<String>) -> T {
    value.unwrap_or_else(|e| {
        problems.push(e);
        default
    })
}

/// A duration field: its value, its default when absent or wrong.
fn duration(
    value: &Option<String>,
    field: &str,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match value {
        Some(t) => or_note(
            parse_duration(t).map_err(|e| format!("{field}: {e}")),
            default,
            problems,
        ),
        None => default,
    }
}

/// The settings `file` gives; what is wrong goes to `problems`, and a wrong
/// field takes its default meanwhile.
fn checked(
    file: File,
    path: &Path,
    read: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Config {
    let gates = gates::gates(file.gate, read, problems);
    let setups = setups::setups(file.setup, problems);
    let detected = detect::detected(read);
    let (gates, gates_source) = match gates.is_empty() {
        true => (detected.gates, detected.gates_source),
        false => (gates, GatesSource::Configured(path.to_path_buf())),
    };
    let run = &file.run;
    let slice_timeout = duration(
        &run.slice_timeout,
        "run.slice_timeout",
        DEFAULT_SLICE_TIMEOUT,
        problems,
    );
    let inactivity_timeout = duration(
        &run.inactivity_timeout,
        "run.inactivity_timeout",
        DEFAULT_INACTIVITY_TIMEOUT,
        problems,
    );
    let max_attempts = match run.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS) {
        0 => or_note(
            Err("run.max_attempts: must be at least 1".into()),
            DEFAULT_MAX_ATTEMPTS,
            problems,
        ),
        n => n,
    };
    let log_limit = match &run.log_limit {
        Some(t) => or_note(
            parse_size(t).map_err(|e| format!("run.log_limit: {e}")),
            crate::capture::DEFAULT_LIMIT,
            problems,
        ),
        None => crate::capture::DEFAULT_LIMIT,
    };
    let pool_max_disk = file.pool.max_disk.as_deref().map(|t| {
        or_note(
            parse_size(t).map_err(|e| format!("pool.max_disk: {e}")),
            0,
            problems,
        )
    });
    let gate_cpus = match run.gate_cpus {
        Some(0) => or_note(
            Err("run.gate_cpus: must be at least 1".into()),
            None,
            problems,
        ),
        n => n,
    };
    // The model is `[run] model`, else the Kimi CLI's `KIMI_MODEL_NAME`,
    // else the only model with a price.
    let model = run
        .model
        .clone()
        .or_else(|| std::env::var("KIMI_MODEL_NAME").ok());
    let price = match model {
        Some(m) => file.price.iter().find(|p| p.model == m).cloned(),
        None if file.price.len() == 1 => file.price.first().cloned(),
        None => None,
    };
    check_sparse(&file.sparse.include, problems);
    check_pool(&file.pool.cache, &file.pool.keep, problems);
    let network = network(&file.sandbox, problems);
    let commit_author = match file.commit.author {
        Some(a) if crate::git::parse_author(&a).is_none() => or_note(
            Err(format!(
                "commit.author: `{a}` is not `Name <email>` (e.g. \"Release Bot <bot@example.com>\")"
            )),
            None,
            problems,
        ),
        a => a,
    };
    let executor = match file.executor.kind.as_deref() {
        None | Some("local") => crate::executor::Executor::Local,
        Some("slurm") => crate::executor::Executor::Slurm(file.executor.slurm),
        Some(other) => or_note(
            Err(format!(
                "executor.kind: `{other}` is not an executor; use \"local\" or \"slurm\""
            )),
            crate::executor::Executor::Local,
            problems,
        ),
    };
    Config {
        gates,
        gates_source,
        setups,
        slice_timeout,
        max_attempts,
        inactivity_timeout,
        log_limit,
        deny: file.policy.deny,
        price,
        sandbox_writable: file.sandbox.writable,
        sandbox_env: file.sandbox.env,
        sandbox_readable: file.sandbox.readable,
        network,
        slot_cache: file.pool.cache,
        slot_keep: file.pool.keep,
        pool_max_disk,
        gate_cpus,
        sparse_include: file.sparse.include,
        commit_author,
        executor,
    }
}

/// `[sandbox] network` and `allow_hosts`.
fn network(
    sandbox: &super::file::SandboxEntry,
    problems: &mut Vec<String>,
) -> crate::sandbox::NetworkSettings {
    crate::sandbox::NetworkSettings {
        open: match sandbox.network.as_deref() {
            None | Some("isolated") => false,
            Some("open") => true,
            Some(other) => or_note(
                Err(format!(
                    "sandbox.network: `{other}` is not a network; use \"isolated\" (the default: out only to allow_hosts) or \"open\" (omk's own network)"
                )),
                false,
                problems,
            ),
        },
        allow: or_note(
            crate::sandbox::egress::AllowList::parse(&sandbox.allow_hosts)
                .map_err(|e| format!("sandbox.allow_hosts: {}", e.join("; "))),
            Default::default(),
            problems,
        ),
    }
}

/// `[sparse] include`: directories of the repository.
fn check_sparse(include: &[String], problems: &mut Vec<String>) {
    for dir in include {
        if dir.starts_with('/')
            || dir
                .split('/')
                .any(|p| p == ".." || p.contains(['*', '?', '[']))
        {
            problems.push(format!(
                "sparse.include: `{dir}` is not a directory of the repository (relative, no `..`, no globs, e.g. \"build\")"
            ));
        }
    }
}

/// `[pool] cache` names variables; `[pool] keep` paths inside the worktree.
fn check_pool(cache: &[String], keep: &[String], problems: &mut Vec<String>) {
    for name in cache {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !valid {
            problems.push(format!(
                "pool.cache: `{name}` is not an environment variable name (letters, digits and _, e.g. CARGO_TARGET_DIR)"
            ));
        }
    }
    for pattern in keep {
        if pattern.trim().is_empty()
            || pattern.starts_with('!')
            || pattern.split('/').any(|c| c == "..")
        {
            problems.push(format!(
                "pool.keep: `{pattern}` is not a path pattern inside the worktree (e.g. \"target\" or \"**/__pycache__\")"
            ));
        }
    }
}
