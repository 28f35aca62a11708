//! What `goal land` asks GitHub's REST API: the pull request, the checks on
//! its head and which of them the base's protection requires, a failed
//! check's log, the reviews and their comments; and what it writes: the
//! merge, and replies on review comments' threads.
//!
//! Lists are read one page of 100: a pull request with more checks,
//! reviews or comments than that is beyond what omk follows.

use serde::Deserialize;
use serde_json::json;

use super::super::github::{agent, ApiError, GitHub};
use super::Finding;
use crate::store::landing::{Check, CheckState, MergeMethod, Source};

/// The most of a failed check's log a feedback attempt is shown: where
/// the failure begins, then the end (as for a failed gate).
const LOG_LINES: usize = 200;
const LOG_BYTES: usize = 16 * 1024;
/// The most of a check's log read from GitHub.
const LOG_READ: u64 = 64 * 1024 * 1024;
/// The most of a reviewer's words passed on.
const REVIEW_CHARS: usize = 4000;

/// The pull request as the API shows it.
#[derive(Debug, Deserialize)]
pub(super) struct Pull {
    pub state: String,
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    pub head: Head,
    pub base: Base,
}

#[derive(Debug, Deserialize)]
pub(super) struct Head {
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Base {
    #[serde(rename = "ref")]
    pub name: String,
}

/// A check that failed, with where its log is.
#[derive(Debug, Clone)]
pub(super) struct Failed {
    pub name: String,
    /// The GitHub Actions job it is (its check run's id), whose log can be read.
    pub job: Option<u64>,
    /// What the check itself says: its output's title, summary and text,
    /// or a status's description and link.
    pub output: String,
}

/// A user, as the API shows one.
#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

impl GitHub {
    /// `GET` `path` below the repository (`""`: the repository), decoded.
    pub(super) fn read<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        doing: &str,
    ) -> Result<T, ApiError> {
        self.answer(self.authorized(agent().get(&self.url(path))).call(), doing)
    }

    fn url(&self, path: &str) -> String {
        match path {
            "" => format!("{}/repos/{}", self.api, self.repo),
            path => format!("{}/repos/{}/{path}", self.api, self.repo),
        }
    }

    /// Every check on `sha`: its check runs and its commit statuses, each
    /// marked required as `base`'s protection says (all of them, when the
    /// protection cannot be read); and the failed required ones' logs'
    /// whereabouts.
    pub(super) fn checks(
        &self,
        sha: &str,
        base: &str,
    ) -> Result<(Vec<Check>, Vec<Failed>), ApiError> {
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Combined {
            statuses: Vec<Status>,
        }
        #[derive(Deserialize)]
        struct Required {
            #[serde(default)]
            contexts: Vec<String>,
        }
        let runs: Runs = self.read(
            &format!("commits/{sha}/check-runs?per_page=100"),
            "reading the checks",
        )?;
        let combined: Combined = self.read(
            &format!("commits/{sha}/status?per_page=100"),
            "reading the statuses",
        )?;
        // Unreadable (no protection, or no right to read it), or naming
        // none: every check present counts.
        let required: Option<Vec<String>> = self
            .read::<Required>(
                &format!("branches/{base}/protection/required_status_checks"),
                "reading the required checks",
            )
            .ok()
            .map(|r| r.contexts)
            .filter(|c| !c.is_empty());
        let is_required = |name: &str| {
            required
                .as_ref()
                .is_none_or(|r| r.iter().any(|c| c == name))
        };
        let seen = runs
            .check_runs
            .into_iter()
            .map(Run::seen)
            .chain(combined.statuses.into_iter().map(Status::seen));
        let (mut checks, mut failed) = (Vec::new(), Vec::new());
        for (mut check, why) in seen {
            check.required = is_required(&check.name);
            if check.required && check.state == CheckState::Failed {
                failed.push(why);
            }
            checks.push(check);
        }
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        failed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((checks, failed))
    }

    /// What a failed check says went wrong, as feedback: an Actions job's
    /// log (where the failure begins, then the end), else the check's own
    /// output; bounded and scrubbed.
    pub(super) fn failure(&self, failed: &Failed) -> Finding {
        let log = failed.job.and_then(|job| {
            // GitHub answers with a redirect to the log's storage, which
            // the client follows without the token.
            let url = self.url(&format!("actions/jobs/{job}/logs"));
            self.answer_text(
                self.authorized(agent().get(&url)).call(),
                "reading the check's log",
                LOG_READ,
            )
            .ok()
        });
        let text = match log {
            Some(log) => {
                let plain: String = log
                    .lines()
                    .map(|l| without_timestamp(l).to_string() + "\n")
                    .collect();
                crate::excerpt::of_text(&plain, LOG_LINES, LOG_BYTES)
            }
            None => crate::words::clip(&failed.output, LOG_BYTES),
        };
        Finding {
            from: Source::Check {
                name: failed.name.clone(),
            },
            text: crate::redact::redact(&text).into_owned(),
        }
    }

    /// What reviewers asked to change and omk has not answered (`answered`):
    /// each reviewer's latest verdict counts, and of those that request
    /// changes, each comment that opens a thread on a file, and the
    /// review's own words.
    pub(super) fn changes_requested(
        &self,
        number: u64,
        answered: &[Source],
    ) -> Result<Vec<Finding>, ApiError> {
        #[derive(Deserialize)]
        struct Review {
            id: u64,
            user: Option<User>,
            state: String,
            #[serde(default)]
            body: Option<String>,
        }
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
            user: Option<User>,
            #[serde(default)]
            pull_request_review_id: Option<u64>,
            #[serde(default)]
            in_reply_to_id: Option<u64>,
            #[serde(default)]
            path: String,
            #[serde(default)]
            line: Option<u64>,
            #[serde(default)]
            original_line: Option<u64>,
            #[serde(default)]
            body: String,
        }
        let reviews: Vec<Review> = self.read(
            &format!("pulls/{number}/reviews?per_page=100"),
            "reading the reviews",
        )?;
        // Each reviewer's latest verdict, as GitHub's review decision counts.
        let mut latest: Vec<&Review> = Vec::new();
        for r in reviews.iter().filter(|r| {
            matches!(
                r.state.as_str(),
                "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
            )
        }) {
            let author = r.user.as_ref().map(|u| u.login.as_str());
            latest.retain(|l| l.user.as_ref().map(|u| u.login.as_str()) != author);
            latest.push(r);
        }
        let asking: Vec<&Review> = latest
            .into_iter()
            .filter(|r| r.state == "CHANGES_REQUESTED")
            .collect();
        if asking.is_empty() {
            return Ok(vec![]);
        }
        let comments: Vec<Comment> = self.read(
            &format!("pulls/{number}/comments?per_page=100"),
            "reading the review comments",
        )?;
        let login = |u: &Option<User>| {
            u.as_ref()
                .map_or_else(|| "ghost".to_string(), |u| u.login.clone())
        };
        let words =
            |text: &str| crate::words::clip(&crate::redact::redact(text.trim()), REVIEW_CHARS);
        let mut found = Vec::new();
        for review in asking {
            if let Some(body) = review.body.as_deref().filter(|b| !b.trim().is_empty()) {
                found.push(Finding {
                    from: Source::Review {
                        id: review.id,
                        author: login(&review.user),
                    },
                    text: words(body),
                });
            }
            for c in comments.iter().filter(|c| {
                c.pull_request_review_id == Some(review.id) && c.in_reply_to_id.is_none()
            }) {
                found.push(Finding {
                    from: Source::Comment {
                        id: c.id,
                        author: login(&c.user),
                        path: c.path.clone(),
                        line: c.line.or(c.original_line),
                    },
                    text: words(&c.body),
                });
            }
        }
        found.retain(|f| !answered.contains(&f.from));
        Ok(found)
    }

    /// Replies on review comment `comment`'s thread.
    pub(super) fn reply(&self, number: u64, comment: u64, body: &str) -> Result<(), ApiError> {
        let url = self.url(&format!("pulls/{number}/comments/{comment}/replies"));
        self.answer::<serde_json::Value>(
            self.with_auth(agent().post(&url))
                .send_json(json!({ "body": body })),
            "replying on a review comment",
        )
        .map(|_| ())
    }

    /// The merge method to use: `asked`, else squash when the repository
    /// allows it, else a merge commit.
    pub(super) fn method(&self, asked: Option<MergeMethod>) -> Result<MergeMethod, ApiError> {
        if let Some(method) = asked {
            return Ok(method);
        }
        #[derive(Deserialize)]
        struct Settings {
            #[serde(default = "yes")]
            allow_squash_merge: bool,
        }
        fn yes() -> bool {
            true
        }
        let settings: Settings = self.read("", "reading the repository's merge settings")?;
        Ok(match settings.allow_squash_merge {
            true => MergeMethod::Squash,
            false => MergeMethod::Merge,
        })
    }

    /// Merges pull request `number` if its head is still `sha`.
    pub(super) fn merge(
        &self,
        number: u64,
        sha: &str,
        method: MergeMethod,
    ) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Merged {
            sha: String,
        }
        let url = self.url(&format!("pulls/{number}/merge"));
        let merged: Merged = self.answer(
            self.with_auth(agent().put(&url))
                .send_json(json!({ "sha": sha, "merge_method": method.as_str() })),
            "merging the pull request",
        )?;
        Ok(merged.sha)
    }
}

/// A check run as the API shows it.
#[derive(Deserialize)]
struct Run {
    id: u64,
    name: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default)]
    output: Option<Output>,
    #[serde(default)]
    app: Option<App>,
}

#[derive(Deserialize, Default)]
struct Output {
    title: Option<String>,
    summary: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct App {
    slug: Option<String>,
}

/// A commit status as the API shows it.
#[derive(Deserialize)]
struct Status {
    context: String,
    state: String,
    description: Option<String>,
    target_url: Option<String>,
}

impl Run {
    /// The check it is (not yet marked required), and where to read why
    /// it failed.
    fn seen(self) -> (Check, Failed) {
        let state = match (self.status.as_str(), self.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => CheckState::Passed,
            ("completed", _) => CheckState::Failed,
            _ => CheckState::Pending,
        };
        let output = self.output.unwrap_or_default();
        let actions = self
            .app
            .and_then(|a| a.slug)
            .is_some_and(|s| s == "github-actions");
        let check = Check {
            name: self.name.clone(),
            state,
            required: false,
            summary: (state == CheckState::Failed)
                .then(|| summary(output.summary.as_ref().or(output.title.as_ref())))
                .flatten(),
        };
        let failed = Failed {
            name: self.name,
            job: actions.then_some(self.id),
            output: joined(&[
                output.title.as_ref(),
                output.summary.as_ref(),
                output.text.as_ref(),
            ]),
        };
        (check, failed)
    }
}

impl Status {
    /// As [`Run::seen`].
    fn seen(self) -> (Check, Failed) {
        let state = match self.state.as_str() {
            "success" => CheckState::Passed,
            "pending" => CheckState::Pending,
            _ => CheckState::Failed,
        };
        let check = Check {
            name: self.context.clone(),
            state,
            required: false,
            summary: (state == CheckState::Failed)
                .then(|| summary(self.description.as_ref()))
                .flatten(),
        };
        let failed = Failed {
            name: self.context,
            job: None,
            output: joined(&[self.description.as_ref(), self.target_url.as_ref()]),
        };
        (check, failed)
    }
}

/// A failed check's summary as recorded: bounded and scrubbed.
fn summary(text: Option<&String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
        .map(|t| crate::words::clip(&crate::redact::redact(t.trim()), 500))
}

/// The parts that say something, one paragraph each.
fn joined(parts: &[Option<&String>]) -> String {
    parts
        .iter()
        .flatten()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// An Actions log line without the timestamp GitHub puts before each.
fn without_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((stamp, rest))
            if stamp.len() >= 20
                && stamp.ends_with('Z')
                && stamp.as_bytes().get(10) == Some(&b'T')
                && stamp.as_bytes()[..4].iter().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::without_timestamp;

    #[test]
    fn actions_timestamps_are_taken_off_log_lines_and_nothing_else() {
        assert_eq!(
            without_timestamp("2026-12-07T06:32:37.1234567Z error[E0425]: x"),
            "error[E0425]: x"
        );
        assert_eq!(
            without_timestamp("error: no stamp here"),
            "error: no stamp here"
        );
        assert_eq!(without_timestamp("2026 is a year"), "2026 is a year");
    }
}
