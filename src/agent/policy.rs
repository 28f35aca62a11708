//! The approval policy: what an agent may do without a person watching.
//!
//! Every permission or approval request from any backend is turned into a
//! [`Request`] and decided here. By default file edits and commands inside
//! the slice's worktree are allowed; anything naming a path outside it
//! (absolute paths elsewhere, `..` escapes), pushing, and whatever matches
//! the `[policy] deny` list of `omk.toml` is denied. Each [`Decision`] names
//! the rule that made it and is recorded as an event; a denial is answered
//! as a rejection the model can read, so the turn goes on.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Paths outside the worktree a command may still name: system locations
/// that tools read, and the null device.
const SYSTEM_PATHS: &[&str] = &[
    "/usr/",
    "/bin/",
    "/lib",
    "/etc/",
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/proc/self/",
];

/// What an agent asks to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The tool, as the agent names it (`WriteFile`, `Shell`, `edit`…).
    pub tool: String,
    /// Paths the request touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The shell command, for command requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allow: bool,
    /// The rule that decided: `inside-worktree`, `outside-worktree`, `no-push`, `deny-list`.
    pub rule: String,
    /// Why, in words the model can read.
    pub reason: String,
}

/// The policy for one slice.
#[derive(Debug, Clone)]
pub struct Policy {
    worktree: PathBuf,
    deny: Vec<String>,
    read_only: bool,
}

impl Policy {
    /// A policy confining an agent to `worktree`, also denying commands
    /// that contain any of `deny`.
    pub fn new(worktree: &Path, deny: &[String]) -> Policy {
        Policy {
            worktree: worktree.to_path_buf(),
            deny: deny.to_vec(),
            read_only: false,
        }
    }

    /// A policy for planning: every request to write or run anything is denied.
    pub fn read_only(worktree: &Path) -> Policy {
        Policy {
            worktree: worktree.to_path_buf(),
            deny: vec![],
            read_only: true,
        }
    }

    /// Decides one request.
    pub fn decide(&self, request: &Request) -> Decision {
        if self.read_only {
            return deny(
                "read-only",
                "planning is read-only: do not change files or run commands; answer with the plan"
                    .into(),
            );
        }
        for path in &request.paths {
            if path.split('/').any(|part| part == ".git") {
                return deny(
                    "git-dir",
                    format!("`{path}` is in the repository's .git directory, which is omk's, not the agent's"),
                );
            }
            if !self.inside(path) {
                return deny(
                    "outside-worktree",
                    format!(
                        "`{path}` is outside this slice's worktree; only change files inside {}",
                        self.worktree.display()
                    ),
                );
            }
        }
        if let Some(command) = &request.command {
            let words: Vec<&str> = command.split_whitespace().collect();
            if words
                .windows(2)
                .any(|w| w[0].ends_with("git") && w[1] == "push")
            {
                return deny(
                    "no-push",
                    "pushing is not allowed; omk commits and merges your work".into(),
                );
            }
            if words
                .iter()
                .any(|w| w.split('/').any(|part| part == ".git"))
            {
                return deny(
                    "git-dir",
                    "commands may not touch the repository's .git directory".into(),
                );
            }
            if let Some(pattern) = self.deny.iter().find(|p| command.contains(p.as_str())) {
                return deny(
                    "deny-list",
                    format!(
                        "commands containing `{pattern}` are denied by this repository's policy"
                    ),
                );
            }
            for word in words {
                let word = word.trim_matches(|c| {
                    matches!(c, '"' | '\'' | ';' | '(' | ')' | '>' | '<' | '|' | '&')
                });
                let escapes = word.split('/').any(|part| part == "..") && !self.inside(word);
                let elsewhere = word.starts_with('/')
                    && !self.inside(word)
                    && !SYSTEM_PATHS.iter().any(|p| word.starts_with(p));
                if escapes || elsewhere {
                    return deny(
                        "outside-worktree",
                        format!("the command names `{word}`, outside this slice's worktree; work only inside {}", self.worktree.display()),
                    );
                }
            }
        }
        Decision {
            allow: true,
            rule: "inside-worktree".into(),
            reason: "stays inside the slice's worktree".into(),
        }
    }

    /// Whether `path` (absolute, or relative to the worktree) stays inside the worktree.
    fn inside(&self, path: &str) -> bool {
        let joined = self.worktree.join(path);
        let mut normal = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::ParentDir => {
                    normal.pop();
                }
                Component::CurDir => {}
                other => normal.push(other),
            }
        }
        normal.starts_with(&self.worktree)
    }
}

fn deny(rule: &str, reason: String) -> Decision {
    Decision {
        allow: false,
        rule: rule.into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::new(Path::new("/state/wt/core"), &["rm -rf".into()])
    }

    fn edit(path: &str) -> Request {
        Request {
            tool: "WriteFile".into(),
            paths: vec![path.into()],
            command: None,
        }
    }

    fn shell(command: &str) -> Request {
        Request {
            tool: "Shell".into(),
            paths: vec![],
            command: Some(command.into()),
        }
    }

    #[test]
    fn edits_inside_the_worktree_are_allowed() {
        for p in ["src/lib.rs", "/state/wt/core/a.txt", "a/../b.txt"] {
            let d = policy().decide(&edit(p));
            assert!(d.allow, "{p}: {d:?}");
            assert_eq!(d.rule, "inside-worktree");
        }
    }

    #[test]
    fn paths_outside_are_denied_with_a_readable_reason() {
        for p in [
            "/home/user/repo/x.rs",
            "../sibling/x",
            "a/../../x",
            "/state/wt/core-other/x",
        ] {
            let d = policy().decide(&edit(p));
            assert!(!d.allow, "{p}");
            assert_eq!(d.rule, "outside-worktree");
            assert!(d.reason.contains("outside"), "{}", d.reason);
        }
    }

    #[test]
    fn the_git_directory_is_not_the_agents() {
        assert_eq!(
            policy().decide(&edit(".git/hooks/pre-commit")).rule,
            "git-dir"
        );
        assert_eq!(
            policy().decide(&edit("/state/wt/core/.git")).rule,
            "git-dir"
        );
        assert_eq!(
            policy().decide(&shell("echo x > .git/config")).rule,
            "git-dir"
        );
        assert!(policy().decide(&edit("src/.gitignore")).allow);
    }

    #[test]
    fn planning_denies_everything() {
        let d = Policy::read_only(Path::new("/w")).decide(&edit("src/lib.rs"));
        assert!(!d.allow);
        assert_eq!(d.rule, "read-only");
    }

    #[test]
    fn commands_are_judged_by_what_they_name() {
        assert!(policy().decide(&shell("cargo test > /dev/null 2>&1")).allow);
        assert!(policy().decide(&shell("/usr/bin/env python3 x.py")).allow);
        assert_eq!(
            policy().decide(&shell("git push origin main")).rule,
            "no-push"
        );
        assert_eq!(
            policy().decide(&shell("cd sub && /usr/bin/git push")).rule,
            "no-push"
        );
        assert_eq!(policy().decide(&shell("rm -rf build")).rule, "deny-list");
        assert_eq!(
            policy().decide(&shell("echo hi > /home/user/repo/x")).rule,
            "outside-worktree"
        );
        assert_eq!(
            policy().decide(&shell("cp x ../../other/")).rule,
            "outside-worktree"
        );
    }
}
