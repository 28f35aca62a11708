//! `[[setup]]` entries checked into setups: every problem of every entry.

use super::file::SetupEntry;
use crate::setup::{path_problem, SetupSpec, DEFAULT_TIMEOUT};

/// The setups `entries` describe; what is wrong with them goes to
/// `problems` (each naming its entry and field), and such an entry is left out.
pub(super) fn setups(entries: Vec<SetupEntry>, problems: &mut Vec<String>) -> Vec<SetupSpec> {
    let mut setups: Vec<SetupSpec> = Vec::new();
    for (i, s) in entries.into_iter().enumerate() {
        let at = format!("setup[{i}] (`{}`)", s.name);
        match setup(s, &at, &setups) {
            Ok(spec) => setups.push(spec),
            Err(mut wrong) => problems.append(&mut wrong),
        }
    }
    setups
}

/// One setup, or everything wrong with it.
fn setup(s: SetupEntry, at: &str, earlier: &[SetupSpec]) -> Result<SetupSpec, Vec<String>> {
    let mut wrong = Vec::new();
    if s.name.trim().is_empty() {
        wrong.push(format!("{at}.name: empty"));
    }
    if earlier.iter().any(|x| x.name == s.name) {
        wrong.push(format!("{at}.name: duplicate setup name"));
    }
    let command = s.command.filter(|c| !c.trim().is_empty()).unwrap_or_else(|| {
        wrong.push(format!(
            "{at}.command: empty or missing; the command that installs the dependencies, e.g. \"npm ci\""
        ));
        String::new()
    });
    if s.inputs.is_empty() {
        wrong.push(format!(
            "{at}.inputs: empty; name the files whose content decides the result, e.g. [\"package-lock.json\"]"
        ));
    }
    if s.outputs.is_empty() {
        wrong.push(format!(
            "{at}.outputs: empty; name the untracked paths it produces, e.g. [\"node_modules\"]"
        ));
    }
    for (field, paths, output) in [("inputs", &s.inputs, false), ("outputs", &s.outputs, true)] {
        for p in paths.iter().filter_map(|p| path_problem(p, output)) {
            wrong.push(format!("{at}.{field}: {p}"));
        }
    }
    for o in &s.outputs {
        if let Some(x) = earlier.iter().find(|x| x.outputs.contains(o)) {
            wrong.push(format!(
                "{at}.outputs: `{o}` is setup `{}`'s output already",
                x.name
            ));
        }
    }
    let timeout = match &s.timeout {
        Some(t) => crate::words::parse_duration(t).unwrap_or_else(|e| {
            wrong.push(format!("{at}.timeout: {e}"));
            DEFAULT_TIMEOUT
        }),
        None => DEFAULT_TIMEOUT,
    };
    let allow_hosts = crate::sandbox::egress::AllowList::parse(&s.allow_hosts)
        .map_err(|e| wrong.push(format!("{at}.allow_hosts: {}", e.join("; "))))
        .unwrap_or_default();
    if !wrong.is_empty() {
        return Err(wrong);
    }
    Ok(SetupSpec {
        name: s.name,
        command,
        inputs: s.inputs,
        outputs: s.outputs,
        allow_hosts,
        timeout,
    })
}
