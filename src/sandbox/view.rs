//! What a confined process sees of the file system.
//!
//! The view is the host's, with places hidden under empty private `tmpfs`
//! mounts and a few paths bound back in:
//! - hidden: `/tmp`, `/var/tmp`, `/run` (and `/var/run`),
//!   `$XDG_RUNTIME_DIR`, the homes (`$HOME`, `/root`, `/home`), the user's
//!   checkout and omk's state — so no socket, credential, untracked file,
//!   other slot or other goal of the host is there. The private `/tmp`,
//!   `/var/tmp` and `$HOME` are writable and vanish with the process.
//! - bound back: what the process may write (its tree, temp dir, caches),
//!   read-only what it needs to run (the repository's git directory, the
//!   toolchain directories of the home, `PATH`'s directories, the agent
//!   program's install directory and interpreter) and what `[sandbox]
//!   readable` names.
//!
//! Any pathname socket of the host that is still in sight after that is
//! covered too (see [`super::jail`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One step of building the view, applied parents first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Step {
    /// The path it applies to (canonical).
    pub path: PathBuf,
    /// What it does there.
    pub op: Op,
}

/// What a [`Step`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// Covers the path with an empty private tmpfs, writable or not.
    Hide {
        /// Whether the process may write in it.
        writable: bool,
    },
    /// Binds the host's path back in, writable or read-only.
    Keep {
        /// Whether the process may write in it.
        writable: bool,
    },
}

/// Toolchain directories of a home that stay readable: what builds and
/// package managers read, never credentials.
pub const TOOLCHAIN_DIRS: &[&str] = &[
    ".cargo",
    ".rustup",
    ".npm",
    ".cache/pip",
    ".cache/uv",
    ".local/share/uv",
    ".pyenv",
    ".nvm",
    ".volta",
    ".bun",
    ".deno",
    "go",
    ".m2/repository",
    ".gradle/caches",
];

/// Places of omk's process that no confined process may see (the user's
/// checkouts), and git directories they may read (their slots need them).
#[derive(Debug, Default)]
struct Private {
    hidden: Vec<PathBuf>,
    readable: Vec<PathBuf>,
}

static PRIVATE: Mutex<Private> = Mutex::new(Private {
    hidden: Vec::new(),
    readable: Vec::new(),
});

/// Hides the checkout at `work_tree` from every confined process this
/// process starts, leaving its git directory readable.
pub fn hide_checkout(work_tree: &Path, git_dir: &Path) {
    if let Ok(mut p) = PRIVATE.lock() {
        let (w, g) = (canonical(work_tree), canonical(git_dir));
        if !p.hidden.contains(&w) {
            p.hidden.push(w);
        }
        if !p.readable.contains(&g) {
            p.readable.push(g);
        }
    }
}

/// Hides `dir` (a cluster job's directory, say) from every confined process.
pub fn hide(dir: &Path) {
    if let Ok(mut p) = PRIVATE.lock() {
        let d = canonical(dir);
        if !p.hidden.contains(&d) {
            p.hidden.push(d);
        }
    }
}

/// The homes a process may have: `$HOME` and the user's from the password
/// database.
pub fn homes() -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(h) = passwd_home() {
        homes.push(h);
    }
    homes.dedup();
    homes
}

fn passwd_home() -> Option<PathBuf> {
    // SAFETY: getpwuid returns a pointer into static storage or NULL; the
    // string is copied out at once, on this thread.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
        Some(PathBuf::from(
            std::ffi::OsStr::from_encoded_bytes_unchecked(dir.to_bytes()),
        ))
    }
}

/// The steps for a process that may write `writable` and read `readable`
/// besides what every confined process reads, running `programs` (command
/// words; absolute paths and names found on `path`). What `shown` names is
/// bound back writable at the mount, so tools that check their working
/// directory for writability start, while Landlock grants no write there:
/// no scratch space above it stays writable either.
pub fn steps(
    writable: &[PathBuf],
    readable: &[PathBuf],
    shown: &[PathBuf],
    programs: &[String],
    path: Option<&str>,
) -> Vec<Step> {
    let homes = homes();
    let mut hides: Vec<(PathBuf, bool)> = vec![
        ("/tmp".into(), true),
        ("/var/tmp".into(), true),
        ("/run".into(), false),
        ("/var/run".into(), false),
        ("/root".into(), false),
        ("/home".into(), false),
    ];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        hides.push((dir.into(), false));
    }
    // The process's own `$HOME` is a private, writable directory.
    for h in &homes {
        hides.push((h.clone(), true));
    }
    if let Ok(state) = crate::store::home::home() {
        hides.push((state, false));
    }
    let (private_hidden, private_readable) = PRIVATE
        .lock()
        .map(|p| (p.hidden.clone(), p.readable.clone()))
        .unwrap_or_default();
    hides.extend(private_hidden.into_iter().map(|h| (h, false)));

    let mut keeps: Vec<(PathBuf, bool)> = Vec::new();
    keeps.extend(writable.iter().chain(shown).map(|w| (w.clone(), true)));
    keeps.extend(readable.iter().map(|r| (r.clone(), false)));
    keeps.extend(private_readable.into_iter().map(|r| (r, false)));
    for h in &homes {
        keeps.extend(TOOLCHAIN_DIRS.iter().map(|d| (h.join(d), false)));
    }
    let search: Vec<PathBuf> = path
        .unwrap_or_default()
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    for dir in &search {
        keeps.push((dir.clone(), false));
        if let Some(prefix) = path_prefix(dir, &homes) {
            keeps.push((prefix, false));
        }
    }
    for program in programs {
        for root in install_roots(program, &search) {
            keeps.push((root, false));
        }
    }

    let mut steps: Vec<Step> = Vec::new();
    let shown: Vec<PathBuf> = shown.iter().map(|p| canonical(p)).collect();
    for (p, writable) in hides {
        // Only real directories are covered; `/var/run` is usually a link
        // to `/run`, hidden already.
        if p.is_symlink() || !p.is_dir() {
            continue;
        }
        let writable = writable && !shown.iter().any(|s| s.starts_with(canonical(&p)));
        steps.push(Step {
            path: canonical(&p),
            op: Op::Hide { writable },
        });
    }
    for (p, writable) in keeps {
        if !p.exists() {
            continue;
        }
        steps.push(Step {
            path: canonical(&p),
            op: Op::Keep { writable },
        });
    }
    steps.sort();
    // A path both hidden and kept is kept; the same path twice, once.
    steps.dedup_by(|b, a| {
        a.path == b.path && {
            if let (Op::Keep { writable: wa }, Op::Keep { writable: wb }) = (a.op, b.op) {
                a.op = Op::Keep { writable: wa || wb };
            } else if matches!(b.op, Op::Keep { .. }) {
                a.op = b.op;
            }
            true
        }
    });
    // Nothing needs binding back where nothing above it was hidden.
    let hidden: Vec<PathBuf> = steps
        .iter()
        .filter(|s| matches!(s.op, Op::Hide { .. }))
        .map(|s| s.path.clone())
        .collect();
    steps.retain(|s| match s.op {
        Op::Hide { .. } => true,
        Op::Keep { .. } => hidden.iter().any(|h| s.path.starts_with(h)),
    });
    steps
}

/// The directory above a `PATH` entry that holds what its programs need
/// (`~/.pyenv` for `~/.pyenv/shims`, a virtualenv for its `bin`), unless
/// that is a home or one of its catch-all directories.
fn path_prefix(dir: &Path, homes: &[PathBuf]) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    if !matches!(name, "bin" | "shims" | ".bin") {
        return None;
    }
    let parent = dir.parent()?;
    let too_wide = homes
        .iter()
        .any(|h| parent == h || parent == h.join(".local"))
        || parent == Path::new("/")
        || parent == Path::new("/tmp")
        || parent.parent().is_none();
    (!too_wide).then(|| parent.to_path_buf())
}

/// Where a program lives with what it needs to start: for a file in a
/// `node_modules` tree, the package root that holds it; in a `bin`
/// directory, the prefix above (a virtualenv, a toolchain); else its
/// directory. Both the path as named and as resolved count, and so does a
/// script's interpreter.
pub fn install_roots(program: &str, search: &[PathBuf]) -> Vec<PathBuf> {
    let Some((mut roots, resolved)) = own_roots(program, search) else {
        return vec![];
    };
    if let Some(interp) = interpreter(&resolved) {
        let words: Vec<&str> = interp.split_whitespace().collect();
        let interp = match words.as_slice() {
            [env, name, ..] if env.ends_with("/env") => *name,
            [first, ..] => *first,
            [] => "",
        };
        if let Some((more, _)) = own_roots(interp, search) {
            roots.extend(more);
        }
    }
    roots.sort();
    roots.dedup();
    roots
}

/// The install roots of `program` itself, as named and as resolved, and
/// its resolved path; `None` when it is not found.
fn own_roots(program: &str, search: &[PathBuf]) -> Option<(Vec<PathBuf>, PathBuf)> {
    let found = match program.contains('/') {
        true => Some(PathBuf::from(program)).filter(|p| p.is_absolute() && p.exists()),
        false => search.iter().map(|d| d.join(program)).find(|p| p.is_file()),
    }?;
    let resolved = canonical(&found);
    let roots = [&found, &resolved]
        .into_iter()
        .filter_map(|p| root_of(p))
        .collect();
    Some((roots, resolved))
}

fn root_of(file: &Path) -> Option<PathBuf> {
    let mut outermost_modules = None;
    for a in file.ancestors() {
        if a.file_name().is_some_and(|n| n == "node_modules") {
            outermost_modules = a.parent().map(Path::to_path_buf);
        }
    }
    if outermost_modules.is_some() {
        return outermost_modules;
    }
    let dir = file.parent()?;
    match dir.file_name().is_some_and(|n| n == "bin") {
        true => dir
            .parent()
            .filter(|p| p.parent().is_some())
            .map(Path::to_path_buf),
        false => Some(dir.to_path_buf()),
    }
    .filter(|r| r != Path::new("/") && r != Path::new("/tmp"))
}

/// A script's `#!` line, without the `#!`.
fn interpreter(file: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let head = head.get(..n)?.strip_prefix(b"#!")?;
    let line = head.split(|&b| b == b'\n').next()?;
    Some(String::from_utf8_lossy(line).trim().to_string())
}

/// The absolute paths a shell command names as words (a script it runs),
/// and its first word.
pub fn command_programs(command: &str) -> Vec<String> {
    let mut words = command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
        .filter(|w| !w.is_empty());
    let first = words.next().map(str::to_string);
    first
        .into_iter()
        .chain(words.filter(|w| w.starts_with('/')).map(str::to_string))
        .collect()
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_s_install_root_is_its_prefix_or_package() {
        let tmp = tempfile::tempdir().unwrap();
        let venv = tmp.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("bin/tool"), "#!/bin/sh\n").unwrap();
        let node = tmp.path().join("proj/node_modules/.bin");
        std::fs::create_dir_all(tmp.path().join("proj/node_modules/pkg/dist")).unwrap();
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(tmp.path().join("proj/node_modules/pkg/dist/cli.js"), "").unwrap();
        std::os::unix::fs::symlink("../pkg/dist/cli.js", node.join("cli")).unwrap();
        let search = vec![venv.join("bin"), node.clone()];
        let venv = canonical(&venv);
        assert!(install_roots("tool", &search).contains(&venv));
        assert_eq!(
            install_roots("cli", &search),
            vec![canonical(&tmp.path().join("proj"))]
        );
        let script = tmp.path().join("scripts/agent.sh");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "echo hi\n").unwrap();
        assert_eq!(
            install_roots(&script.display().to_string(), &search),
            vec![canonical(script.parent().unwrap())]
        );
    }

    #[test]
    fn commands_name_their_programs() {
        assert_eq!(
            command_programs("sh /opt/x/agent.sh --flag 'a b' && /usr/bin/env true"),
            vec!["sh", "/opt/x/agent.sh", "/usr/bin/env"]
        );
    }

    #[test]
    fn hidden_places_are_covered_and_what_is_needed_comes_back() {
        let tmp = tempfile::tempdir_in("/tmp").unwrap();
        let slot = tmp.path().join("slot");
        std::fs::create_dir_all(&slot).unwrap();
        let steps = steps(std::slice::from_ref(&slot), &[], &[], &[], Some("/usr/bin"));
        let of = |p: &Path| steps.iter().find(|s| s.path == canonical(p)).map(|s| s.op);
        assert_eq!(of(Path::new("/tmp")), Some(Op::Hide { writable: true }));
        assert_eq!(of(&slot), Some(Op::Keep { writable: true }));
        // /usr/bin is not hidden: nothing to bind back.
        assert_eq!(of(Path::new("/usr/bin")), None);
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(steps, sorted, "parents come first");
    }
}
