//! Landing a goal's pull request (`omk goal land`): following the head omk
//! pushed until its checks pass and the repository lets it merge, then
//! merging it with that head's sha — never an admin bypass, never a forced
//! push. Every step is a `landing` event in the goal's log, so a landing
//! stopped half-way is taken up again from the pull request it recorded.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::github::{ApiError, GitHub};
use crate::git::Repo;
use crate::state::GoalState;
use crate::store::events::EventBody;
use crate::store::landing::{Check, CheckState, LandStep, MergeMethod};
use crate::store::GoalDir;

/// How `goal land` follows a pull request.
#[derive(Debug, Clone)]
pub struct LandOptions {
    /// How long to wait for it to merge before giving up.
    pub timeout: Duration,
    /// How often the checks are read while nothing changes (doubled up to
    /// four times while they stay the same).
    pub poll: Duration,
    /// How to merge; by default squash when the repository allows it.
    pub method: Option<MergeMethod>,
}

impl Default for LandOptions {
    /// `goal land`'s defaults: two hours, a look every 15 s, squash if allowed.
    fn default() -> LandOptions {
        LandOptions {
            timeout: Duration::from_secs(2 * 60 * 60),
            poll: Duration::from_secs(15),
            method: None,
        }
    }
}

/// How landing ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// Merged as this commit.
    Merged(String),
    /// Stopped without a merge, and why (recorded).
    Stopped(String),
    /// Cancelled (Ctrl-C): nothing is recorded, and `goal land` takes it up again.
    Cancelled,
}

/// The pull request as the API shows it.
#[derive(Debug, Deserialize)]
struct Pull {
    state: String,
    #[serde(default)]
    merged: bool,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    head: Head,
    base: Base,
}

#[derive(Debug, Deserialize)]
struct Head {
    sha: String,
}

#[derive(Debug, Deserialize)]
struct Base {
    #[serde(rename = "ref")]
    name: String,
}

impl GitHub {
    /// `GET` `path` below the repository (`""`: the repository), decoded.
    fn read<T: serde::de::DeserializeOwned>(&self, path: &str, doing: &str) -> Result<T, ApiError> {
        let url = match path {
            "" => format!("{}/repos/{}", self.api, self.repo),
            path => format!("{}/repos/{}/{path}", self.api, self.repo),
        };
        self.answer(
            self.authorized(super::github::agent().get(&url)).call(),
            doing,
        )
    }

    /// Every check on `sha`: its check runs and its commit statuses, each
    /// marked required as `base`'s protection says (all of them, when the
    /// protection cannot be read).
    fn checks(&self, sha: &str, base: &str) -> Result<Vec<Check>, ApiError> {
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Run {
            name: String,
            status: String,
            conclusion: Option<String>,
            #[serde(default)]
            output: Option<Output>,
        }
        #[derive(Deserialize)]
        struct Output {
            title: Option<String>,
            summary: Option<String>,
        }
        #[derive(Deserialize)]
        struct Combined {
            statuses: Vec<Status>,
        }
        #[derive(Deserialize)]
        struct Status {
            context: String,
            state: String,
            description: Option<String>,
        }
        #[derive(Deserialize)]
        struct Required {
            #[serde(default)]
            contexts: Vec<String>,
        }
        let runs: Runs = self.read(&format!("commits/{sha}/check-runs"), "reading the checks")?;
        let combined: Combined =
            self.read(&format!("commits/{sha}/status"), "reading the statuses")?;
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
        let summary = |text: Option<String>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| crate::words::clip(&crate::redact::redact(t.trim()), 500))
        };
        let mut checks: Vec<Check> = runs
            .check_runs
            .into_iter()
            .map(|run| {
                let state = match (run.status.as_str(), run.conclusion.as_deref()) {
                    ("completed", Some("success" | "neutral" | "skipped")) => CheckState::Passed,
                    ("completed", _) => CheckState::Failed,
                    _ => CheckState::Pending,
                };
                let output = run.output.unwrap_or(Output {
                    title: None,
                    summary: None,
                });
                Check {
                    required: is_required(&run.name),
                    summary: match state {
                        CheckState::Failed => summary(output.summary.or(output.title)),
                        _ => None,
                    },
                    name: run.name,
                    state,
                }
            })
            .collect();
        checks.extend(combined.statuses.into_iter().map(|s| {
            let state = match s.state.as_str() {
                "success" => CheckState::Passed,
                "pending" => CheckState::Pending,
                _ => CheckState::Failed,
            };
            Check {
                required: is_required(&s.context),
                summary: (state == CheckState::Failed)
                    .then(|| summary(s.description))
                    .flatten(),
                name: s.context,
                state,
            }
        }));
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(checks)
    }

    /// The merge method to use: `asked`, else squash when the repository
    /// allows it, else a merge commit.
    fn method(&self, asked: Option<MergeMethod>) -> Result<MergeMethod, ApiError> {
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
    fn merge(&self, number: u64, sha: &str, method: MergeMethod) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Merged {
            sha: String,
        }
        let url = format!("{}/repos/{}/pulls/{number}/merge", self.api, self.repo);
        let merged: Merged = self.answer(
            self.with_auth(super::github::agent().put(&url))
                .send_json(json!({ "sha": sha, "merge_method": method.as_str() })),
            "merging the pull request",
        )?;
        Ok(merged.sha)
    }
}

/// Lands the pull request the goal in `state` delivered, found on GitHub
/// through the delivery's remote, until it merges, cannot, or
/// `options.timeout` passes; Ctrl-C cancels. Each step is recorded in
/// `goal`'s log (and folded into `state`), and `show`n. The caller holds
/// the goal's lock.
pub async fn land_goal(
    repo: &Repo,
    goal: &GoalDir,
    state: &mut GoalState,
    options: &LandOptions,
    show: impl Fn(&EventBody),
) -> crate::Result<Landed> {
    let (Some((number, head)), Some(delivery)) = (followed(state), state.delivery.as_ref()) else {
        return Err(crate::Error::Usage(format!(
            "goal {} has no pull request to land; open one with `omk goal deliver {} --to pr`",
            state.goal_id, state.goal_id
        )));
    };
    if let Some(commit) = state.landing.as_ref().and_then(|l| l.merged.clone()) {
        return Ok(Landed::Merged(commit));
    }
    let remote = delivery.remote.clone().unwrap_or_else(|| "origin".into());
    let url = repo.remote_url(&remote)?.ok_or_else(|| {
        crate::Error::Usage(format!("the repository has no remote `{remote}` any more"))
    })?;
    let github =
        GitHub::find(|v| std::env::var(v).ok(), &remote, &url).map_err(crate::Error::Deliver)?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let landed = follow(&github, number, head, options, &cancel, |step| {
        let body = EventBody::Landing(step);
        show(&body);
        super::record(goal, state, body)
    })
    .await;
    signals.abort();
    landed
}

/// Follows pull request `number`, whose head must stay `head`; `record`
/// appends each step to the goal's log.
async fn follow(
    github: &GitHub,
    number: u64,
    head: String,
    options: &LandOptions,
    cancel: &CancellationToken,
    mut record: impl FnMut(LandStep) -> crate::Result<()>,
) -> crate::Result<Landed> {
    record(LandStep::Following {
        number,
        head: head.clone(),
    })?;
    let started = Instant::now();
    let mut seen: Option<Vec<Check>> = None;
    let mut waiting: Option<String> = None;
    let mut quiet = 0u32;
    let stop = |reason: String, record: &mut dyn FnMut(LandStep) -> crate::Result<()>| {
        record(LandStep::Stopped {
            reason: reason.clone(),
        })
        .map(|_| Landed::Stopped(reason))
    };
    loop {
        if started.elapsed() > options.timeout {
            let what = waiting
                .clone()
                .unwrap_or_else(|| "its checks to pass".to_string());
            let reason = format!(
                "gave up after {}, waiting for {what}",
                crate::words::human_duration(options.timeout)
            );
            return stop(reason, &mut record);
        }
        let mut wait = options.poll * 2u32.pow(quiet.min(2));
        match step(github, number, &head, options.method).await {
            Ok(Step::Merged(commit, method)) => {
                record(LandStep::Merged {
                    commit: commit.clone(),
                    method,
                })?;
                return Ok(Landed::Merged(commit));
            }
            Ok(Step::Stop(reason)) => return stop(reason, &mut record),
            Ok(Step::Checks(checks, outcome)) => {
                if seen.as_ref() != Some(&checks) {
                    record(LandStep::Checked {
                        checks: checks.clone(),
                    })?;
                    seen = Some(checks);
                    quiet = 0;
                    waiting = None;
                } else {
                    quiet += 1;
                }
                if let Some(reason) = outcome {
                    if waiting.as_ref() != Some(&reason) {
                        record(LandStep::Waiting {
                            reason: reason.clone(),
                        })?;
                        waiting = Some(reason);
                    }
                }
            }
            Err(e) if e.retry_after.is_some() => wait = e.retry_after.unwrap_or(wait),
            // Asked wrongly (no right, no such pull request): asking again changes nothing.
            Err(e) if matches!(e.status, Some(400..=499)) => return stop(e.message, &mut record),
            // GitHub unreachable or failing: asked again, until the timeout.
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return Ok(Landed::Cancelled),
        }
    }
}

/// The pull request a goal's delivery opened, and the head it pushed.
fn followed(state: &GoalState) -> Option<(u64, String)> {
    let delivery = state.delivery.as_ref()?;
    let number = delivery.pull_request.as_ref()?.number;
    let head = delivery
        .pushed
        .iter()
        .find(|p| p.name == format!("refs/heads/{}", delivery.branch))
        .map(|p| p.commit.clone())
        .or_else(|| delivery.squash_commit.clone())
        .unwrap_or_else(|| state.integration.commit.clone());
    Some((number, head))
}

/// What one look at the pull request found.
enum Step {
    /// It merged (now, or by someone else).
    Merged(String, MergeMethod),
    /// It cannot land, and why.
    Stop(String),
    /// Its checks, and what it waits for beyond them, if anything.
    Checks(Vec<Check>, Option<String>),
}

/// Reads the pull request and its checks, and merges it when every
/// required check passed on `head`.
async fn step(
    github: &GitHub,
    number: u64,
    head: &str,
    method: Option<MergeMethod>,
) -> Result<Step, ApiError> {
    let (gh, head) = (github.clone(), head.to_string());
    tokio::task::spawn_blocking(move || look(&gh, number, &head, method))
        .await
        .unwrap_or_else(|e| Err(ApiError::task(e.to_string())))
}

fn look(
    github: &GitHub,
    number: u64,
    head: &str,
    method: Option<MergeMethod>,
) -> Result<Step, ApiError> {
    let pull: Pull = github.read(&format!("pulls/{number}"), "reading the pull request")?;
    if pull.merged {
        let commit = pull.merge_commit_sha.unwrap_or_default();
        return Ok(Step::Merged(commit, method.unwrap_or(MergeMethod::Merge)));
    }
    if pull.state != "open" {
        return Ok(Step::Stop(format!(
            "pull request #{number} was closed without merging"
        )));
    }
    if pull.head.sha != head {
        return Ok(Step::Stop(format!(
            "the head of pull request #{number} moved to {}, which omk did not push; omk neither builds on it nor overwrites it",
            crate::words::short(&pull.head.sha)
        )));
    }
    let checks = github.checks(head, &pull.base.name)?;
    let required = || checks.iter().filter(|c| c.required);
    let failed: Vec<String> = required()
        .filter(|c| c.state == CheckState::Failed)
        .map(|c| match &c.summary {
            Some(s) => format!("`{}` ({s})", c.name),
            None => format!("`{}`", c.name),
        })
        .collect();
    if !failed.is_empty() {
        return Ok(Step::Stop(format!(
            "required check{} {} failed on {}",
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", "),
            crate::words::short(head)
        )));
    }
    if required().any(|c| c.state == CheckState::Pending) {
        return Ok(Step::Checks(checks, None));
    }
    let method = github.method(method)?;
    match github.merge(number, head, method) {
        Ok(commit) => Ok(Step::Merged(commit, method)),
        // The protection is not satisfied (an approval missing): wait.
        Err(e) if e.status == Some(405) => Ok(Step::Checks(checks, Some(e.message))),
        // The head moved under the merge: the next look says where.
        Err(e) if e.status == Some(409) => Ok(Step::Checks(checks, Some(e.message))),
        Err(e) => Err(e),
    }
}
