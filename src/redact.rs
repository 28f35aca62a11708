//! Scrubbing secrets from what agents and gates produced: transcripts,
//! agent and gate logs, and the text of events and proofs that came from
//! them — never omk's own structure (keys, ids, paths, branches, scopes,
//! the plan; see [`redact_json`]).
//!
//! Two kinds of secret are replaced:
//! - the value of any environment variable whose name says it is one
//!   (`…KEY`, `…TOKEN`, `…SECRET`, `…PASSWORD`, `…CREDENTIAL…`) and that
//!   could be a real credential (see [`could_be_secret`]), by
//!   `[redacted:NAME]`, found with one Aho-Corasick pass;
//! - common key formats (OpenAI/Moonshot-style `sk-…`, GitHub, AWS, Slack
//!   tokens, PEM private keys), by `[redacted]`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::error::Result;

const MARKERS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];
const MIN_LEN: usize = 12;

/// Whether a value could be a credential rather than a word that would
/// scrub innocent text (`integration`, `password`): at least 12 characters,
/// and either 24 or more or of more than one kind (lower, upper, digit,
/// other).
pub fn could_be_secret(value: &str) -> bool {
    let kinds = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
        value.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    let n = value.chars().count();
    n >= MIN_LEN && (n >= 24 || kinds.iter().filter(|k| **k).count() > 1)
}

/// Keys of omk's own structure in events and proofs, whose values are never
/// scrubbed: ids, names, paths, commits, trees, branches, scopes, the plan.
const STRUCTURE: &[&str] = &[
    "kind",
    "seq",
    "ts",
    "prev",
    "goal_id",
    "slice",
    "id",
    "branch",
    "integration_branch",
    "worktree",
    "commit",
    "tree",
    "slice_commit",
    "start_commit",
    "work_from",
    "base_commit",
    "base_tree",
    "base_ref",
    "repository",
    "log",
    "changed_files",
    "write_scope",
    "depends_on",
    "order",
    "sparse",
    "status",
    "name",
    "gate",
    "plan",
    "limits",
    "gates_source",
    "log_end",
    "started_at",
    "finished_at",
    "spec",
    "session_id",
    "attempt",
    "type",
];

/// Scrubs the string values of a JSON event or proof in place with omk's
/// redactor (see [`Redactor::redact_json`]). Returns whether anything changed.
pub fn redact_json(value: &mut serde_json::Value) -> bool {
    global().redact_json(value)
}

/// The names of the variables in omk's environment treated as secrets.
pub fn secret_names() -> Vec<String> {
    let mut names: Vec<String> = secrets_in_env().into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

fn secrets_in_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, value)| {
            let upper = name.to_ascii_uppercase();
            MARKERS.iter().any(|m| upper.contains(m)) && could_be_secret(value)
        })
        .collect()
}

/// Key formats worth scrubbing wherever they appear.
const PATTERNS: &str = r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----|\bsk-[A-Za-z0-9_\-]{20,}|\bgh[pousr]_[A-Za-z0-9]{30,}|\bAKIA[0-9A-Z]{16}\b|\bxox[abprs]-[A-Za-z0-9\-]{10,}";

/// A set of secrets and the scrubbing of text.
pub struct Redactor {
    values: Option<AhoCorasick>,
    labels: Vec<String>,
    formats: Regex,
}

impl Redactor {
    /// A redactor for these `(name, value)` secrets.
    pub fn new(secrets: &[(String, String)]) -> Redactor {
        let mut secrets: Vec<&(String, String)> = secrets.iter().collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let values = (!secrets.is_empty())
            .then(|| {
                aho_corasick::AhoCorasickBuilder::new()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(secrets.iter().map(|(_, v)| v))
                    .ok()
            })
            .flatten();
        Redactor {
            values,
            labels: secrets
                .iter()
                .map(|(n, _)| format!("[redacted:{n}]"))
                .collect(),
            formats: Regex::new(PATTERNS)
                .unwrap_or_else(|_| Regex::new("$^").expect("a trivial regex")),
        }
    }

    /// Scrubs the string values of a JSON event or proof in place, except
    /// those under [`STRUCTURE`] keys; keys are never touched. Returns
    /// whether anything changed.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match value {
            Value::String(s) => match self.redact(s) {
                Cow::Owned(clean) => {
                    *s = clean;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |c, v| self.redact_json(v) | c),
            Value::Object(map) => map
                .iter_mut()
                .filter(|(k, _)| !STRUCTURE.contains(&k.as_str()))
                .fold(false, |c, (_, v)| self.redact_json(v) | c),
            _ => false,
        }
    }

    /// `text` with every secret replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if let Some(ac) = &self.values {
            if ac.is_match(out.as_ref()) {
                out = Cow::Owned(ac.replace_all(out.as_ref(), &self.labels));
            }
        }
        if self.formats.is_match(out.as_ref()) {
            out = Cow::Owned(
                self.formats
                    .replace_all(out.as_ref(), "[redacted]")
                    .into_owned(),
            );
        }
        out
    }
}

/// The redactor for omk's own environment.
pub fn global() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(|| Redactor::new(&secrets_in_env()))
}

/// `text` with every secret in omk's environment, and every key format, replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    global().redact(text)
}

/// How much of a file is scrubbed at once: a line longer than this is
/// scrubbed in pieces of it.
const SCRUB_BLOCK: usize = 1 << 20;

/// Scrubs a file in place (atomically) if it holds any secret, as a stream
/// of lines: memory stays bounded however big the file. A file with nothing
/// to scrub is left untouched.
pub fn redact_file(path: &Path) -> Result<()> {
    use std::io::{BufRead, Read, Write};
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut reader = std::io::BufReader::with_capacity(SCRUB_BLOCK, file);
    let tmp = path.with_extension("scrub-tmp");
    let io = |e| crate::Error::io(format!("scrubbing {}", path.display()), e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let mut changed = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line, or a block of a line too long to hold.
        let n = reader
            .by_ref()
            .take(SCRUB_BLOCK as u64)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        match redact(&text) {
            Cow::Owned(clean) => {
                changed = true;
                out.write_all(clean.as_bytes()).map_err(io)?;
            }
            Cow::Borrowed(_) => out.write_all(&line).map_err(io)?,
        }
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    if !changed {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        return Ok(());
    }
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_by_their_names() {
        let r = Redactor::new(&[(
            "KIMI_API_KEY".to_string(),
            "kimi-live-123456789".to_string(),
        )]);
        assert_eq!(
            r.redact("auth: Bearer kimi-live-123456789 ok"),
            "auth: Bearer [redacted:KIMI_API_KEY] ok"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn key_formats_are_replaced_anywhere() {
        let r = Redactor::new(&[]);
        let pem =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\n-----END OPENSSH PRIVATE KEY-----";
        let text = format!(
            "a sk-abcdefghijklmnopqrstuvwx b AKIAABCDEFGHIJKLMNOP c {pem} d ghp_{}",
            "x".repeat(36)
        );
        assert_eq!(
            r.redact(&text),
            "a [redacted] b [redacted] c [redacted] d [redacted]"
        );
    }

    #[test]
    fn words_are_not_secrets_and_credentials_are() {
        for word in ["password", "integration", "short-1", "correcthorse"] {
            assert!(!could_be_secret(word), "{word}");
        }
        for secret in [
            "kimi-live-123456789",
            "hidden-secret-value-91b3",
            "abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(could_be_secret(secret), "{secret}");
        }
    }

    #[test]
    fn only_what_agents_said_is_scrubbed_never_omks_structure() {
        let r = Redactor::new(&[("API_TOKEN".to_string(), "src/tok3n-value".to_string())]);
        let mut event = serde_json::json!({
            "kind": "slice_failed", "slice": "src/tok3n-value",
            "reason": "agent said src/tok3n-value", "paths": ["src/tok3n-value/a.rs"],
            "write_scope": ["src/tok3n-value/**"]
        });
        assert!(r.redact_json(&mut event));
        assert_eq!(event["slice"], "src/tok3n-value");
        assert_eq!(event["write_scope"][0], "src/tok3n-value/**");
        assert_eq!(event["reason"], "agent said [redacted:API_TOKEN]");
    }
}
