//! Scrubbing secrets from everything omk writes: transcripts, agent and gate
//! logs, events, proofs.
//!
//! Two kinds of secret are replaced:
//! - the value of any environment variable whose name says it is one
//!   (`…KEY`, `…TOKEN`, `…SECRET`, `…PASSWORD`, `…CREDENTIAL…`) and that is
//!   long enough to be a real credential, by `[redacted:NAME]`, found with
//!   one Aho-Corasick pass;
//! - common key formats (OpenAI/Moonshot-style `sk-…`, GitHub, AWS, Slack
//!   tokens, PEM private keys), by `[redacted]`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::error::Result;

const MARKERS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];
const MIN_LEN: usize = 8;

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
    REDACTOR.get_or_init(|| {
        let secrets: Vec<(String, String)> = std::env::vars()
            .filter(|(name, value)| {
                let upper = name.to_ascii_uppercase();
                value.len() >= MIN_LEN && MARKERS.iter().any(|m| upper.contains(m))
            })
            .collect();
        Redactor::new(&secrets)
    })
}

/// `text` with every secret in omk's environment, and every key format, replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    global().redact(text)
}

/// Scrubs a file in place (atomically) if it holds any secret; a file with
/// nothing to scrub is left untouched.
pub fn redact_file(path: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Cow::Owned(clean) = redact(&text) {
        crate::util::write_atomic(path, clean.as_bytes())?;
    }
    Ok(())
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
}
