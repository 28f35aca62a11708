//! Landing a goal's pull request (`omk goal land`): following the head omk
//! pushed until its checks pass and the repository lets it merge, then
//! merging it with that head's sha — never an admin bypass, never a forced
//! push. Every step is a `landing` event in the goal's log, so a landing
//! stopped half-way is taken up again from the pull request it recorded.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::github::{ApiError, GitHub};
use crate::git::Repo;
use crate::state::GoalState;
use crate::store::events::EventBody;
use crate::store::landing::{Check, CheckState, LandStep, MergeMethod, Source};
use crate::store::GoalDir;

mod api;
pub mod feedback;

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
    /// Required checks failed on `head`, or reviewers asked for changes:
    /// what they said, for the slices to repair. Nothing is recorded yet;
    /// `failed` says it in a sentence, should no slice be able to.
    Asked {
        head: String,
        findings: Vec<Finding>,
        failed: String,
    },
}

/// What a failed check or a reviewer said, before it is sent to a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub from: Source,
    /// Bounded and scrubbed.
    pub text: String,
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
    let Some((number, head)) = followed(state) else {
        return Err(crate::Error::Usage(format!(
            "goal {} has no pull request to land; open one with `omk goal deliver {} --to pr`",
            state.goal_id, state.goal_id
        )));
    };
    if let Some(commit) = state.landing.as_ref().and_then(|l| l.merged.clone()) {
        return Ok(Landed::Merged(commit));
    }
    let github = github_of(repo, state)?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let answered: Vec<Source> = state
        .landing
        .iter()
        .flat_map(|l| &l.feedback)
        .flat_map(|s| &s.asked)
        .map(|a| a.from.clone())
        .filter(|f| !matches!(f, Source::Check { .. }))
        .collect();
    let look = Look {
        number,
        head: head.clone(),
        method: options.method,
        answered,
    };
    let landed = follow(&github, look, options, &cancel, |step| {
        let body = EventBody::Landing(step);
        show(&body);
        super::record(goal, state, body)
    })
    .await;
    signals.abort();
    landed
}

/// The GitHub repository of the goal's delivery, through its remote.
fn github_of(repo: &Repo, state: &GoalState) -> crate::Result<GitHub> {
    let remote = state
        .delivery
        .as_ref()
        .and_then(|d| d.remote.clone())
        .unwrap_or_else(|| "origin".into());
    let url = repo.remote_url(&remote)?.ok_or_else(|| {
        crate::Error::Usage(format!("the repository has no remote `{remote}` any more"))
    })?;
    GitHub::find(|v| std::env::var(v).ok(), &remote, &url).map_err(crate::Error::Deliver)
}

/// Replies on the thread of each review comment the last feedback sent
/// back, once the slice it went to merged again: which slice, which
/// commit. Each reply is recorded and `show`n; the ones GitHub refused
/// are returned, with why.
pub async fn answer_threads(
    repo: &Repo,
    goal: &GoalDir,
    state: &mut GoalState,
    show: impl Fn(&EventBody),
) -> crate::Result<Vec<String>> {
    let mut refused = Vec::new();
    let Some(landing) = state.landing.clone() else {
        return Ok(refused);
    };
    let Some(sent) = landing.feedback.last() else {
        return Ok(refused);
    };
    let github = github_of(repo, state)?;
    for asked in &sent.asked {
        let Source::Comment { id, .. } = asked.from else {
            continue;
        };
        if landing.replies.iter().any(|r| r.comment == id) {
            continue;
        }
        let addressed = asked.slices.iter().find_map(|s| {
            let slice = state.slice(s)?;
            let commit = slice.contributed.clone()?;
            (slice.status == crate::state::SliceStatus::Merged).then(|| (s.clone(), commit))
        });
        let Some((slice, commit)) = addressed else {
            continue;
        };
        let body = format!(
            "omk: addressed by slice `{slice}` in {commit} (goal {}).",
            state.goal_id
        );
        let (gh, number) = (github.clone(), landing.number);
        let replied = tokio::task::spawn_blocking(move || gh.reply(number, id, &body))
            .await
            .unwrap_or_else(|e| Err(ApiError::task(e.to_string())));
        let step = match replied {
            Ok(()) => LandStep::Replied {
                comment: id,
                slice,
                commit,
            },
            Err(e) => {
                refused.push(format!("comment {id}: {}", e.message));
                continue;
            }
        };
        let body = EventBody::Landing(step);
        show(&body);
        super::record(goal, state, body)?;
    }
    Ok(refused)
}

/// Follows pull request `number`, whose head must stay `head`; `record`
/// appends each step to the goal's log.
async fn follow(
    github: &GitHub,
    look: Look,
    options: &LandOptions,
    cancel: &CancellationToken,
    mut record: impl FnMut(LandStep) -> crate::Result<()>,
) -> crate::Result<Landed> {
    record(LandStep::Following {
        number: look.number,
        head: look.head.clone(),
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
        match step(github, &look).await {
            Ok(Step::Merged(commit, method)) => {
                record(LandStep::Merged {
                    commit: commit.clone(),
                    method,
                })?;
                return Ok(Landed::Merged(commit));
            }
            Ok(Step::Stop(reason)) => return stop(reason, &mut record),
            Ok(Step::Asked(checks, findings, failed)) => {
                if seen.as_ref() != Some(&checks) {
                    record(LandStep::Checked { checks })?;
                }
                return Ok(Landed::Asked {
                    head: look.head,
                    findings,
                    failed,
                });
            }
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
            // GitHub unreachable or failing: asked again, until the
            // timeout; said once, so that a watcher sees why nothing moves.
            Err(e) => {
                if waiting.as_ref() != Some(&e.message) {
                    record(LandStep::Waiting {
                        reason: e.message.clone(),
                    })?;
                    waiting = Some(e.message);
                }
            }
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

/// What one look at the pull request is about.
#[derive(Debug, Clone)]
struct Look {
    number: u64,
    /// The head omk pushed, which must not have moved.
    head: String,
    method: Option<MergeMethod>,
    /// The reviews and comments already sent back to the slices.
    answered: Vec<Source>,
}

/// What one look at the pull request found.
enum Step {
    /// It merged (now, or by someone else).
    Merged(String, MergeMethod),
    /// It cannot land, and why.
    Stop(String),
    /// Its checks, and what it waits for beyond them, if anything.
    Checks(Vec<Check>, Option<String>),
    /// Its checks, and what failed or was asked for, for the slices to
    /// repair; and that in a sentence.
    Asked(Vec<Check>, Vec<Finding>, String),
}

/// Reads the pull request, its checks and reviews, and merges it when
/// every required check passed on the head and nothing is asked of it.
async fn step(github: &GitHub, look: &Look) -> Result<Step, ApiError> {
    let (gh, look) = (github.clone(), look.clone());
    tokio::task::spawn_blocking(move || look_at(&gh, &look))
        .await
        .unwrap_or_else(|e| Err(ApiError::task(e.to_string())))
}

fn look_at(github: &GitHub, look: &Look) -> Result<Step, ApiError> {
    let (number, head) = (look.number, look.head.as_str());
    let pull: api::Pull = github.read(&format!("pulls/{number}"), "reading the pull request")?;
    if pull.merged {
        let commit = pull.merge_commit_sha.unwrap_or_default();
        return Ok(Step::Merged(
            commit,
            look.method.unwrap_or(MergeMethod::Merge),
        ));
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
    let (checks, failed) = github.checks(head, &pull.base.name)?;
    let mut findings: Vec<Finding> = failed.iter().map(|f| github.failure(f)).collect();
    findings.extend(github.changes_requested(number, &look.answered)?);
    if !findings.is_empty() {
        let said = asked_in_words(&checks, &findings, head);
        return Ok(Step::Asked(checks, findings, said));
    }
    if checks
        .iter()
        .any(|c| c.required && c.state == CheckState::Pending)
    {
        return Ok(Step::Checks(checks, None));
    }
    let method = github.method(look.method)?;
    match github.merge(number, head, method) {
        Ok(commit) => Ok(Step::Merged(commit, method)),
        // The protection is not satisfied (an approval missing): wait.
        Err(e) if e.status == Some(405) => Ok(Step::Checks(checks, Some(e.message))),
        // The head moved under the merge: the next look says where.
        Err(e) if e.status == Some(409) => Ok(Step::Checks(checks, Some(e.message))),
        Err(e) => Err(e),
    }
}

/// What failed on `head` and what reviewers asked, in a sentence.
fn asked_in_words(checks: &[Check], findings: &[Finding], head: &str) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.required && c.state == CheckState::Failed)
        .map(|c| match &c.summary {
            Some(s) => format!("`{}` ({s})", c.name),
            None => format!("`{}`", c.name),
        })
        .collect();
    let mut said = Vec::new();
    if !failed.is_empty() {
        said.push(format!(
            "required check{} {} failed on {}",
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", "),
            crate::words::short(head)
        ));
    }
    let reviews = findings
        .iter()
        .filter(|f| !matches!(f.from, Source::Check { .. }))
        .count();
    if reviews > 0 {
        said.push(format!(
            "reviewers asked for changes ({})",
            crate::words::count(reviews, "comment")
        ));
    }
    said.join("; ")
}
