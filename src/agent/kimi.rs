//! What the Python Kimi CLI's backends (wire and print) share: starting it
//! on a session, reading its token counts, telling a failure worth retrying.

use tokio::sync::mpsc::UnboundedSender;

use super::{kimi_bin, spawn, Task, Update};
use crate::capture::{Capture, Transcript};
use crate::error::Result;

/// Starts the Python Kimi CLI for `task` with `mode` (e.g. `--wire`), in the
/// worktree, on the session the attempt resumes or a new one omk chooses,
/// and reports that session. Returns the running agent, its session id, the
/// bounded log its stderr goes to, and the transcript omk writes beside it.
pub(super) fn start_kimi(
    task: &Task,
    mode: &[&str],
    extra: &[&str],
    stdin: std::process::Stdio,
    updates: &UnboundedSender<Update>,
) -> Result<(crate::process::Group, String, Capture, Transcript)> {
    let session = task.resume_session.clone().unwrap_or_else(new_uuid);
    let capture = Capture::start(&task.log)?;
    let transcript = capture.transcript()?;
    let stderr = capture.stdio()?;
    let bin = kimi_bin();
    let mut cmd = task.command(&bin, &bin)?;
    cmd.args(mode)
        .arg("-w")
        .arg(&task.worktree)
        .args(["-S", &session])
        .args(extra)
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    let group = spawn(cmd, task, &format!("{bin} {}", mode.join(" ")))?;
    let _ = updates.send(Update::Session {
        id: session.clone(),
    });
    Ok((group, session, capture, transcript))
}

/// Whether an error message speaks of a failure worth retrying.
pub(super) fn retryable_text(message: &str) -> bool {
    [
        "429",
        "500",
        "502",
        "503",
        "504",
        "rate limit",
        "overloaded",
        "Connection error",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// The tokens of one step, from the Python Kimi CLI's `StatusUpdate`
/// payload (wire events and the session's `wire.jsonl` alike): input counts
/// fresh and cached tokens, output the generated ones.
pub(super) fn step_tokens(status: &serde_json::Value) -> Option<(u64, u64)> {
    let u = status.get("token_usage")?;
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    Some((
        n("input_other") + n("input_cache_read") + n("input_cache_creation"),
        n("output"),
    ))
}

/// A fresh random (version 4) UUID, for session ids omk chooses.
pub(super) fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, byte)| match i {
            6 => format!("{:02x}", (byte & 0x0f) | 0x40),
            8 => format!("{:02x}", (byte & 0x3f) | 0x80),
            _ => format!("{byte:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The hosts the Kimi CLIs talk to for their model: the base URLs their
/// environment names (`KIMI_BASE_URL`, `KIMI_MODEL_BASE_URL`, …) and their
/// configuration files name (`base_url` of any provider in
/// `$KIMI_SHARE_DIR/config.toml`, `$KIMI_CODE_HOME/config.toml`); with
/// none of those, Kimi's own endpoints.
pub fn model_hosts() -> crate::sandbox::egress::AllowList {
    let mut urls: Vec<String> = [
        "KIMI_BASE_URL",
        "KIMI_MODEL_BASE_URL",
        "MOONSHOT_BASE_URL",
        "OPENAI_BASE_URL",
    ]
    .iter()
    .filter_map(|v| std::env::var(v).ok())
    .filter(|v| !v.is_empty())
    .collect();
    for dir in crate::sandbox::agent_state_dirs() {
        let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) else {
            continue;
        };
        if let Ok(value) = text.parse::<toml::Table>() {
            base_urls(&toml::Value::Table(value), &mut urls);
        }
    }
    let mut hosts: Vec<String> = urls.iter().filter_map(|u| host_of_url(u)).collect();
    if hosts.is_empty() {
        hosts = [
            "api.kimi.com:443",
            "auth.kimi.com:443",
            "api.moonshot.cn:443",
            "api.moonshot.ai:443",
        ]
        .map(String::from)
        .to_vec();
    }
    crate::sandbox::egress::AllowList::parse(&hosts).unwrap_or_default()
}

/// Every string under a `base_url` key in `value`.
fn base_urls(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("base_url", toml::Value::String(s)) => out.push(s.clone()),
                    _ => base_urls(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| base_urls(v, out)),
        _ => {}
    }
}

/// `host:port` of an `http(s)://` URL, the port from the scheme when absent.
pub fn host_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    let has_port = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':')),
        None => authority.contains(':'),
    };
    let port = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => 443,
        _ => 80,
    };
    Some(match has_port {
        true => authority.to_string(),
        false => format!("{authority}:{port}"),
    })
}

#[cfg(test)]
mod model_host_tests {
    #[test]
    fn urls_give_their_host_and_port() {
        assert_eq!(
            super::host_of_url("http://127.0.0.1:18080/v1").as_deref(),
            Some("127.0.0.1:18080")
        );
        assert_eq!(
            super::host_of_url("https://api.kimi.com/coding/v1").as_deref(),
            Some("api.kimi.com:443")
        );
        assert_eq!(super::host_of_url("nonsense"), None);
    }
}
