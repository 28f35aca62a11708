//! Scrubbing secrets from what omk writes: transcripts, logs, events.
//!
//! A secret is the value of any environment variable whose name says it is
//! one (`…KEY`, `…TOKEN`, `…SECRET`, `…PASSWORD`, `…CREDENTIAL…`) and that is
//! long enough to be a real credential. Every occurrence is replaced by
//! `[redacted:NAME]`.

use std::borrow::Cow;
use std::sync::OnceLock;

const MARKERS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];
const MIN_LEN: usize = 8;

fn secrets() -> &'static [(String, String)] {
    static SECRETS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut found: Vec<(String, String)> = std::env::vars()
            .filter(|(name, value)| {
                let upper = name.to_ascii_uppercase();
                value.len() >= MIN_LEN && MARKERS.iter().any(|m| upper.contains(m))
            })
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        found.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        found
    })
}

/// `text` with every known secret replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_with(text, secrets())
}

fn redact_with<'a>(text: &'a str, secrets: &[(String, String)]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for (name, value) in secrets {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), &format!("[redacted:{name}]")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_by_their_names() {
        let secrets = vec![("KIMI_API_KEY".to_string(), "sk-live-123456789".to_string())];
        assert_eq!(
            redact_with("auth: Bearer sk-live-123456789 ok", &secrets),
            "auth: Bearer [redacted:KIMI_API_KEY] ok"
        );
        assert!(matches!(
            redact_with("nothing here", &secrets),
            Cow::Borrowed(_)
        ));
    }
}
