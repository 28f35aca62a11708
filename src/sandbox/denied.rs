//! Saying why a write failed when the sandbox is the reason: a confined
//! process may write only below its writable directories, and tools report
//! a refusal there (`EACCES`, "Permission denied", "Read-only file system")
//! as if the machine were wrongly set up — npm even advises `sudo chown`.

use std::path::{Path, PathBuf};

/// The hint for a log whose failure is a write the sandbox refused: the
/// first path a refusal names that lies outside `writable`, and the line of
/// `omk.toml` that would allow it. `None` when no such refusal is there.
pub fn write_refused_hint(log: &str, writable: &[PathBuf]) -> Option<String> {
    let path = log
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            l.contains("EACCES")
                || l.contains("EROFS")
                || lower.contains("permission denied")
                || lower.contains("read-only file system")
        })
        .flat_map(paths_in)
        .find(|p| !writable.iter().any(|w| p.starts_with(w)))?;
    let dir = path
        .parent()
        .filter(|d| d != &Path::new("/"))
        .unwrap_or(&path);
    Some(format!(
        "the sandbox refused a write to {}: agents and gates may write only in their slot, their temp dir and what `[sandbox] writable` names; to allow it, add `writable = [\"{}\"]` under `[sandbox]` in omk.toml (or to the gate), or point the tool at $TMPDIR",
        path.display(),
        dir.display()
    ))
}

/// The absolute paths a line names, quotes and punctuation around them off.
fn paths_in(line: &str) -> impl Iterator<Item = PathBuf> + '_ {
    line.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\'' | '"' | '`' | ',' | '(' | ')' | '‘' | '’' | '“' | '”'
            )
    })
    .map(|w| w.trim_end_matches([':', '.', ';']))
    .filter(|w| w.starts_with('/') && w.len() > 1)
    .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_outside_the_writable_set_is_named_with_its_fix() {
        let writable = [
            PathBuf::from("/pool/slot-1"),
            PathBuf::from("/pool/slot-1.tmp"),
        ];
        let npm =
            "npm ERR! code EACCES\nnpm ERR! syscall mkdir\nnpm ERR! path /root/.npm/_cacache\n\
                   npm ERR! Error: EACCES: permission denied, mkdir '/root/.npm/_cacache'\n\
                   npm ERR! sudo chown -R 0:0 \"/root/.npm\"";
        let hint = write_refused_hint(npm, &writable).unwrap();
        assert!(
            hint.contains("refused a write to /root/.npm/_cacache")
                && hint.contains("writable = [\"/root/.npm\"]"),
            "{hint}"
        );
        let pip = "ERROR: Could not install packages due to an OSError: [Errno 30] Read-only file system: '/usr/lib/python3/dist-packages/x'";
        assert!(write_refused_hint(pip, &writable)
            .unwrap()
            .contains("/usr/lib/python3/dist-packages/x"));
        // A refusal inside the slot is the tool's own business; no refusal, no hint.
        let coreutils = "mkdir: cannot create directory ‘/var/cache/x’: Permission denied";
        assert!(write_refused_hint(coreutils, &writable)
            .unwrap()
            .contains("write to /var/cache/x:"));
        let inside = "rm: cannot remove '/pool/slot-1/locked': Permission denied";
        assert_eq!(write_refused_hint(inside, &writable), None);
        assert_eq!(
            write_refused_hint("test failed: expected 2, got 3", &writable),
            None
        );
    }
}
