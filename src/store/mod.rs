//! Where a repository's goals live: outside its working tree, one directory
//! per repository under omk's state home.
//!
//! ```text
//! $OMK_HOME (default $XDG_STATE_HOME/omk, else ~/.local/state/omk)
//! └── repos/<repo-name>-<hash of its git dir>/
//!     ├── goals/<goal-id>/{plan.json, events.jsonl, proof.json, logs/…}
//!     ├── pool/slot-N/          worktree slots, recycled across goals
//!     ├── gate-cache/           passing gate results by tree
//!     └── planning/             scratch worktrees of planning agents
//! ```

pub mod events;
pub mod home;
pub mod kinds;
pub mod landing;
pub mod limits;

pub use home::home;

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;

/// The state directory of one repository.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A new goal id: the time (UTC, to the second) and four random hex digits.
pub fn new_goal_id() -> String {
    let stamp = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    format!(
        "{}-{:04x}",
        stamp.format(&format).unwrap_or_default(),
        rand::random::<u16>()
    )
}

/// Whether `id` has the shape [`new_goal_id`] gives.
pub fn is_goal_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 20
        && b[8] == b'-'
        && b[15] == b'-'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && b[16..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The files of one goal.
#[derive(Debug, Clone)]
pub struct GoalDir {
    /// The goal's id.
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
}

impl GoalDir {
    /// The plan as given.
    pub fn plan(&self) -> PathBuf {
        self.dir.join("plan.json")
    }
    /// The event log.
    pub fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    /// The proof (the goal's current state while it runs).
    pub fn proof(&self) -> PathBuf {
        self.dir.join("proof.json")
    }
    /// Agent and gate logs.
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The controller's lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Takes the goal's lock: only one process drives a goal at a time. The
    /// lock is an `flock`, so the kernel releases it when its holder dies.
    pub fn lock(&self) -> Result<GoalLock> {
        use std::io::{Seek, Write};
        let path = self.lock_path();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .context(|| format!("opening {}", path.display()))?;
        // A controller that was killed can leave its lock held for a moment
        // by a child it was starting (between fork and exec the child shares
        // the lock's open file): when the named holder is gone, wait for that.
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Some(pid) = held_by(&file) {
            if process_alive(&pid) || std::time::Instant::now() > patience {
                return Err(Error::Busy {
                    goal: self.id.clone(),
                    // A holder that has not written its pid yet is starting.
                    pid: match pid.is_empty() {
                        true => "that is starting".into(),
                        false => pid,
                    },
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| write!(file, "{}", std::process::id()))
            .context(|| format!("writing {}", path.display()))?;
        Ok(GoalLock { _file: file })
    }

    /// The process holding the goal's lock, if one does. Only looks: the
    /// lock file is not rewritten, and a free lock is released at once.
    pub fn holder(&self) -> Option<i32> {
        let file = std::fs::File::open(self.lock_path()).ok()?;
        held_by(&file)?.parse().ok()
    }
}

/// Tries the `flock` of an open lock file. When another process holds it,
/// returns the pid written in the file; otherwise the lock is now held
/// through `file` (released when it is dropped) and `None` is returned.
fn held_by(file: &std::fs::File) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return None;
    }
    let mut pid = String::new();
    let _ = (&*file).read_to_string(&mut pid);
    Some(pid.trim().to_string())
}

/// Whether the process with this pid (as written in a lock file) runs.
fn process_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with(['Z', 'X'])
    })
}

/// Held while a process drives a goal; released on drop or death.
#[derive(Debug)]
pub struct GoalLock {
    _file: std::fs::File,
}

impl Store {
    /// The store of `repo`. Creates nothing.
    pub fn for_repo(repo: &Repo) -> Result<Store> {
        // The repository's, not the worktree's: a linked worktree of it
        // shares the state of its goals. Named after the main worktree.
        let main = match repo.common_dir.file_name() {
            Some(n) if n == ".git" => repo.common_dir.parent(),
            _ => Some(repo.common_dir.as_path()),
        };
        let name = main
            .and_then(|m| m.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into());
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = crate::files::fnv1a64(repo.common_dir.as_os_str().as_encoded_bytes());
        Ok(Store {
            root: home()?.join("repos").join(format!("{name}-{hash:016x}")),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository's worktree pool.
    pub fn pool_dir(&self) -> PathBuf {
        self.root.join("pool")
    }

    /// Passing gate results, by gate and tree.
    pub fn gate_cache_dir(&self) -> PathBuf {
        self.root.join("gate-cache")
    }

    /// Where planning runs leave their logs.
    pub fn planning_dir(&self) -> PathBuf {
        self.root.join("planning")
    }

    /// The worktrees of planning runs that no process runs any more (a
    /// killed omk leaves its planning worktree behind): each planning run
    /// holds the lock of its folder while it runs.
    pub fn stray_planning_worktrees(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.planning_dir()) else {
            return vec![];
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|dir| dir.join("worktree").exists())
            .filter(|dir| {
                let run = GoalDir {
                    id: String::new(),
                    dir: dir.clone(),
                };
                run.holder().is_none()
            })
            .map(|dir| dir.join("worktree"))
            .collect()
    }

    /// Creates the directory of a new goal with a fresh id.
    pub fn create_goal(&self) -> Result<GoalDir> {
        loop {
            match self.create_goal_as(&new_goal_id()) {
                Err(Error::GoalExists(_)) => continue,
                made => return made,
            }
        }
    }

    /// Creates the directory of a new goal with the id `id` (one that
    /// [`new_goal_id`] made); an id in use is refused.
    pub fn create_goal_as(&self, id: &str) -> Result<GoalDir> {
        let goals = self.root.join("goals");
        std::fs::create_dir_all(&goals).context(|| format!("creating {}", goals.display()))?;
        let dir = goals.join(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(GoalDir {
                id: id.to_string(),
                dir,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::GoalExists(id.to_string()))
            }
            Err(e) => Err(Error::io(format!("creating {}", dir.display()), e)),
        }
    }

    /// Where a detached controller's output goes (`goal run --detach`).
    pub fn detached_log(&self, id: &str) -> PathBuf {
        self.root.join("detached").join(format!("{id}.log"))
    }

    /// Every goal's id, oldest first: by when its first event was recorded
    /// (ids made in the same second end in random digits, so their order
    /// says nothing), then by id.
    pub fn goal_ids(&self) -> Result<Vec<String>> {
        use std::io::BufRead;
        let goals = self.root.join("goals");
        let Ok(entries) = std::fs::read_dir(&goals) else {
            return Ok(vec![]);
        };
        let started = |events: &Path| -> String {
            let mut first = String::new();
            if let Ok(file) = std::fs::File::open(events) {
                let _ = std::io::BufReader::new(file).read_line(&mut first);
            }
            serde_json::from_str::<serde_json::Value>(&first)
                .ok()
                .and_then(|e| e["ts"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let mut ids: Vec<(String, String)> = entries
            .flatten()
            .filter(|e| e.path().join("events.jsonl").is_file())
            .filter_map(|e| {
                let id = e.file_name().into_string().ok()?;
                Some((started(&e.path().join("events.jsonl")), id))
            })
            .collect();
        // The timestamps share a format and zone, so text order is time order.
        ids.sort_by(|a, b| (a.1.get(..15), &a.0, &a.1).cmp(&(b.1.get(..15), &b.0, &b.1)));
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// Finds a goal by `latest`, full id or unique prefix.
    pub fn find_goal(&self, id: &str) -> Result<GoalDir> {
        let ids = self.goal_ids()?;
        let found = if id == "latest" {
            ids.last().cloned().into_iter().collect::<Vec<_>>()
        } else if ids.iter().any(|i| i == id) {
            vec![id.to_string()]
        } else {
            ids.into_iter().filter(|i| i.starts_with(id)).collect()
        };
        match found.as_slice() {
            [one] => Ok(GoalDir {
                id: one.clone(),
                dir: self.root.join("goals").join(one),
            }),
            [] => Err(Error::UnknownGoal(id.to_string())),
            many => Err(Error::AmbiguousGoal {
                prefix: id.to_string(),
                matches: many.to_vec(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_made_in_the_same_second_are_ordered_by_when_they_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store {
            root: dir.path().to_path_buf(),
        };
        // The later goal's random digits sort first.
        for (id, ts) in [
            ("20261202-035727-ffff", "2026-12-02T03:57:27.100Z"),
            ("20261202-035727-0001", "2026-12-02T03:57:27.900Z"),
            ("20261202-035726-9999", "2026-12-02T03:57:26.999Z"),
        ] {
            let goal = dir.path().join("goals").join(id);
            std::fs::create_dir_all(&goal).unwrap();
            let line =
                format!("{{\"seq\":1,\"ts\":\"{ts}\",\"kind\":\"goal_resumed\",\"pid\":1}}\n");
            std::fs::write(goal.join("events.jsonl"), line).unwrap();
        }
        assert_eq!(
            store.goal_ids().unwrap(),
            [
                "20261202-035726-9999",
                "20261202-035727-ffff",
                "20261202-035727-0001"
            ]
        );
        assert_eq!(
            store.find_goal("latest").unwrap().id,
            "20261202-035727-0001"
        );
    }
}
