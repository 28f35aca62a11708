//! What omk runs without `omk.toml`: the defaults, and a gate read off the
//! repository's build files.

use super::*;

/// The settings of a repository without `omk.toml`: defaults, and a test
/// gate detected from its build files, if one says how to test.
pub(super) fn detected(read: &impl Fn(&str) -> Option<String>) -> Config {
    let candidates: [(&str, &str); 5] = [
        ("Cargo.toml", "cargo test"),
        ("package.json", "npm test"),
        ("go.mod", "go test ./..."),
        ("pyproject.toml", "python3 -m pytest"),
        ("Makefile", "make test"),
    ];
    let found = candidates.iter().find(|(file, _)| match *file {
        // Only a Makefile with a `test` target counts.
        "Makefile" => read(file).is_some_and(|t| t.lines().any(|l| l.starts_with("test:"))),
        _ => read(file).is_some(),
    });
    let (gates, gates_source) = match found {
        Some((file, command)) => (
            vec![GateSpec {
                allow_hosts: Default::default(),
                name: "test".into(),
                command: command.to_string(),
                timeout: DEFAULT_GATE_TIMEOUT,
                scope: GateScope::Both,
                writable: vec![],
                env: vec![],
                // pytest runs on one core; the others spread over all
                // (or cannot be told), so they run alone.
                cpus: command.contains("pytest").then_some(1),
                review: None,
                ci: None,
            }],
            GatesSource::Detected(file),
        ),
        None => (vec![], GatesSource::None),
    };
    Config {
        gates,
        gates_source,
        setups: vec![],
        slice_timeout: DEFAULT_SLICE_TIMEOUT,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
        log_limit: crate::capture::DEFAULT_LIMIT,
        deny: vec![],
        price: None,
        sandbox_writable: vec![],
        sandbox_env: vec![],
        sandbox_readable: vec![],
        network: Default::default(),
        slot_cache: vec![],
        slot_keep: vec![],
        pool_max_disk: None,
        gate_cpus: None,
        executor: Default::default(),
        sparse_include: vec![],
        commit_author: None,
    }
}
