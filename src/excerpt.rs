//! The part of a failed step's log a person (or the next attempt) reads:
//! where the failure begins, not only where the log ends. A compiler's
//! root error comes first and its follow-ups last; a test runner's
//! `FAILED` line and a traceback start in the middle. So an excerpt is the
//! first error lines, then the tail, within the same bounds.

/// Lines that start a failure in the output of compilers and test runners.
const MARKS: &[&str] = &[
    "error[E",
    "error:",
    "FAILED",
    "panicked at",
    "Traceback (most recent call last)",
    "AssertionError",
    "FAIL:",
    "ERROR:",
];

/// At most `lines` lines and about `bytes` bytes of the log at `path`: the
/// lines from the first that marks a failure (half the budget), then its
/// last lines; just the last lines when no line marks one, or when the
/// first mark is within them. Empty when the file cannot be read.
pub fn of_log(path: &std::path::Path, lines: usize, bytes: usize) -> String {
    // Logs are bounded by the capture limit; a generous window from the end
    // holds the failure in any realistic one.
    let text = crate::excerpt::tail(path, usize::MAX, 16 * 1024 * 1024);
    of_text(&text, lines, bytes)
}

/// [`of_log`] of `text`.
pub fn of_text(text: &str, lines: usize, bytes: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let tail_from = all.len().saturating_sub(lines);
    let first = all.iter().position(|l| MARKS.iter().any(|m| l.contains(m)));
    let pick: Vec<&str> = match first {
        Some(at) if at < tail_from => {
            let head = (lines / 2).max(1);
            let tail = lines.saturating_sub(head).max(1);
            let head_end = (at + head).min(all.len());
            let tail_start = all.len().saturating_sub(tail).max(head_end);
            let mut pick: Vec<&str> = all[at..head_end].to_vec();
            if tail_start > head_end {
                pick.push("…");
            }
            pick.extend(&all[tail_start..]);
            pick
        }
        _ => all[tail_from..].to_vec(),
    };
    bounded(&pick, bytes)
}

/// The lines joined, at most `bytes` long: the first lines kept whole and
/// the rest dropped from the middle, never cutting the first error line.
fn bounded(lines: &[&str], bytes: usize) -> String {
    let joined = lines.join("\n");
    if joined.len() <= bytes {
        return joined;
    }
    let mut head = String::new();
    let mut tail: Vec<&str> = Vec::new();
    let (mut i, mut j) = (0, lines.len());
    let mut used = 0;
    // Alternate: the first line, the last, the second, the one before it…
    while i < j {
        let next = lines[i].len() + 1;
        if used + next > bytes {
            break;
        }
        head.push_str(lines[i]);
        head.push('\n');
        used += next;
        i += 1;
        if i < j {
            let prev = lines[j - 1].len() + 1;
            if used + prev > bytes {
                break;
            }
            tail.push(lines[j - 1]);
            used += prev;
            j -= 1;
        }
    }
    if head.is_empty() {
        return lines
            .first()
            .map(|l| l.chars().take(bytes).collect())
            .unwrap_or_default();
    }
    tail.reverse();
    if i < j {
        head.push_str("…\n");
    }
    head.push_str(&tail.join("\n"));
    head.trim_end().to_string()
}

/// The end of the text file at `path`: at most its last `lines` lines and
/// `bytes` bytes (cut at a line start), however large it is; empty when it
/// cannot be read.
pub fn tail(path: &std::path::Path, lines: usize, bytes: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(bytes as u64);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err()
        || file.take(bytes as u64).read_to_end(&mut buf).is_err()
    {
        return String::new();
    }
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if from > 0 {
        // The first line was cut: start at the next whole one.
        text = text
            .split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiler_s_root_error_is_kept_with_the_tail() {
        let mut log = vec!["   Compiling x v0.1.0".to_string()];
        log.push("error[E0592]: duplicate definitions with name `new`".into());
        for i in 0..60 {
            log.push(format!("  note line {i}"));
        }
        log.push("For more information about this error, try `rustc --explain E0592`.".into());
        let text = log.join("\n");
        let excerpt = of_text(&text, 20, 2048);
        assert!(excerpt.starts_with("error[E0592]"), "{excerpt}");
        assert!(excerpt.ends_with("`rustc --explain E0592`."), "{excerpt}");
        assert!(excerpt.lines().count() <= 21, "{excerpt}");
        assert!(excerpt.contains('…'));
    }

    #[test]
    fn without_a_mark_or_with_it_in_the_tail_it_is_the_tail() {
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(of_text(&text, 3, 2048), "line 47\nline 48\nline 49");
        let short = "ok\nFAILED tests/test_a.py::test_x\ndone";
        assert_eq!(of_text(short, 20, 2048), short);
    }

    #[test]
    fn the_bytes_bound_holds() {
        let mut text = String::from("Traceback (most recent call last)\n");
        for i in 0..100 {
            text += &format!("  File \"x.py\", line {i}, in f {}\n", "y".repeat(80));
        }
        let excerpt = of_text(&text, 40, 1024);
        assert!(excerpt.len() <= 1024 + 4, "{}", excerpt.len());
        assert!(excerpt.starts_with("Traceback"), "{excerpt}");
    }

    #[test]
    fn a_tail_is_bounded_by_lines_and_bytes_and_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, &text).unwrap();
        assert_eq!(tail(&log, 2, 1 << 20), "line 998\nline 999");
        let cut = tail(&log, 1000, 30);
        assert!(
            cut.len() <= 30 && cut.starts_with("line ") && cut.ends_with("line 999"),
            "{cut:?}"
        );
        assert_eq!(tail(&dir.path().join("missing"), 5, 5), "");
    }
}
