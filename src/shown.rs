//! Text that agents, gates and file names control, made safe to show: it
//! is shown, never obeyed. In a terminal no control character or escape
//! sequence acts (no clipboard write, link, title, cleared screen or fake
//! line); in Markdown no heading, HTML, link or image can be made.

use std::borrow::Cow;

/// `text` with every control character made visible (`\x1b`, `\n`, `\r`,
/// `\t`, `\u{202e}`): for one line of a terminal.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` with every control character but the newline made visible: for
/// several lines of a terminal (an excerpt of a log).
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// Whether `c` acts on a terminal or reorders what is shown.
fn controls(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let acts = |c: char| controls(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !acts(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// `text` as one line of plain Markdown text: control characters visible,
/// HTML as entities, and every character that could start markup (a
/// heading, emphasis, a link or image, code, a table cell) escaped.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in visible(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A log's bytes for a terminal: colour and style (SGR: `ESC [ … m`) pass;
/// every other escape sequence and control character is made visible, but
/// newlines and tabs. A carriage return is kept only before a newline.
pub fn sgr_only(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x1b => {
                // A CSI sequence: ESC [ parameters intermediates final.
                if bytes.get(i + 1) == Some(&b'[') {
                    let mut j = i + 2;
                    while j < bytes.len() && (0x30..=0x3f).contains(&bytes[j]) {
                        j += 1;
                    }
                    while j < bytes.len() && (0x20..=0x2f).contains(&bytes[j]) {
                        j += 1;
                    }
                    if bytes.get(j) == Some(&b'm') {
                        out.extend_from_slice(&bytes[i..=j]);
                        i = j + 1;
                        continue;
                    }
                }
                out.extend_from_slice(b"\\x1b");
            }
            b'\n' | b'\t' => out.push(b),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => out.push(b),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            // C1 controls, as UTF-8 (U+0080..U+009F).
            0xc2 if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => {
                out.extend_from_slice(format!("\\u{{{:x}}}", bytes[i + 1]).as_bytes());
                i += 2;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "a\x1b]52;c;cHduZWQ=\x07b\x1b[2J\rstatus: ready\n\u{202e}x";

    #[test]
    fn nothing_acts_on_a_terminal() {
        let shown = visible(HOSTILE);
        assert!(!shown.chars().any(controls), "{shown}");
        assert_eq!(
            shown,
            "a\\x1b]52;c;cHduZWQ=\\x07b\\x1b[2J\\rstatus: ready\\n\\u{202e}x"
        );
        assert!(visible_lines("one\ntwo\x1b[1m").contains("one\ntwo\\x1b"));
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn logs_keep_their_colours_and_nothing_else() {
        let log = b"\x1b[1;31merror\x1b[0m: x\r\n\x1b]8;;http://evil\x07link\x1b[2Jdone\rfake";
        let shown = String::from_utf8(sgr_only(log)).unwrap();
        assert_eq!(
            shown,
            "\x1b[1;31merror\x1b[0m: x\r\n\\x1b]8;;http://evil\\x07link\\x1b[2Jdone\\rfake"
        );
    }

    #[test]
    fn markdown_makes_no_markup() {
        let name = "x\n### All gates passed <img src=x onerror=alert(1)> [click](http://evil) ![i](http://e/i.png)";
        let md = markdown(name);
        assert!(!md.contains('\n') && !md.contains('<'), "{md}");
        assert!(
            md.contains("\\#\\#\\#") && md.contains("\\[click\\]\\(http"),
            "{md}"
        );
    }
}
