//! Delivering a finished goal where engineers review it: left on its branch,
//! fast-forwarded into the base branch, pushed with its proof, or opened as
//! a pull request. `goal run` (at its end) and `goal deliver` (after the
//! fact) deliver through [`deliver`], and check first with [`prepare`].
//!
//! Nothing is ever forced: a push the remote refuses is reported, and the
//! goal stays `ready` locally.

pub(crate) mod error;
pub use error::DeliverError;
mod github;
pub mod land;

pub use github::{GitHub, TokenSource};

use crate::error::{Error, Result};
use crate::git::conventions::{self, PROOF_FILE, PROOF_LOG};
use crate::git::{PushStatus, Repo};
use crate::state::{
    Deliver, DeliverOptions, Delivery, GoalState, GoalStatus, LogEnd, PushedRef, SliceStatus,
};
use crate::store::events::{EventBody, EventLog};
use crate::store::GoalDir;

/// GitHub refuses pull-request bodies longer than this many characters.
const BODY_LIMIT: usize = 65_000;

/// What to deliver, and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub to: Deliver,
    pub options: DeliverOptions,
    /// Deliver a goal that is not `ready`: the slices that merged.
    pub partial: bool,
}

impl Request {
    /// Whether there is anything to do beyond leaving the integration branch.
    pub fn is_needed(&self) -> bool {
        self.to != Deliver::Branch || self.options.squash
    }
}

/// What [`prepare`] found: the remote and, for a pull request, GitHub.
#[derive(Debug, Clone)]
pub struct Route {
    remote: Option<String>,
    github: Option<GitHub>,
}

/// [`prepare`] for a goal that has ended: it must be `ready`, unless the
/// request is partial; every problem is reported at once.
pub fn prepare_for(repo: &Repo, state: &GoalState, request: &Request) -> Result<Route> {
    let mut errors = Vec::new();
    if state.status != GoalStatus::Ready && !request.partial {
        errors.push(DeliverError::NotReady {
            goal: state.goal_id.clone(),
            status: state.status,
        });
    }
    match prepare(repo, state.base_ref.as_deref(), request) {
        Ok(route) if errors.is_empty() => Ok(route),
        Ok(_) => Err(Error::Deliver(errors)),
        Err(Error::Deliver(more)) => {
            errors.extend(more);
            Err(Error::Deliver(errors))
        }
        Err(e) => Err(e),
    }
}

/// Checks that `request` can be carried out from this repository (the
/// remote exists; for a pull request a token and the repository are
/// known), before anything is pushed; every problem is reported at once.
pub fn prepare(repo: &Repo, base_ref: Option<&str>, request: &Request) -> Result<Route> {
    let mut errors = Vec::new();
    match (request.to, base_ref) {
        (Deliver::Ff, None) => errors.push(DeliverError::BaseNotBranch("fast-forward")),
        (Deliver::Pr | Deliver::Land, None) => {
            errors.push(DeliverError::BaseNotBranch("open a pull request into"))
        }
        _ => {}
    }
    let mut route = Route {
        remote: None,
        github: None,
    };
    if request.to.pushes() {
        let name = match (&request.options.remote, base_ref) {
            (Some(name), _) => name.clone(),
            (None, Some(base)) => repo
                .upstream_remote(base)?
                .unwrap_or_else(|| "origin".to_string()),
            (None, None) => "origin".to_string(),
        };
        match repo.remote_url(&name)? {
            None => errors.push(DeliverError::NoRemote(name)),
            Some(url) => {
                if request.to.opens_pull_request() {
                    match GitHub::find(|v| std::env::var(v).ok(), &name, &url) {
                        Ok(gh) => route.github = Some(gh),
                        Err(found) => errors.extend(found),
                    }
                }
                route.remote = Some(name);
            }
        }
    }
    match errors.is_empty() {
        true => Ok(route),
        false => Err(Error::Deliver(errors)),
    }
}

/// Delivers the goal in `state` as `request` asks (its `route` from
/// [`prepare_for`], which also refused a goal that is not ready), records what happened
/// in its log (and rewrites its proof), and returns it. The caller holds
/// the goal's lock.
pub fn deliver(
    repo: &Repo,
    goal: &GoalDir,
    state: &mut GoalState,
    request: &Request,
    route: &Route,
) -> Result<Delivery> {
    let missing: Vec<String> = state
        .slices
        .iter()
        .filter(|s| s.status != SliceStatus::Merged)
        .map(|s| s.id.clone())
        .collect();
    let squash = match request.options.squash {
        true => Some(squash(repo, state)?),
        false => None,
    };
    let integration = state.integration.commit.clone();
    let head = squash.clone().unwrap_or_else(|| integration.clone());
    let head_branch = match squash {
        Some(_) => conventions::squash_branch(&state.goal_id),
        None => state.integration.branch.clone(),
    };
    let mut delivery = Delivery {
        to: request.to,
        branch: head_branch.clone(),
        squash_commit: squash.clone(),
        missing,
        ..Delivery::default()
    };
    match request.to {
        Deliver::Branch => {
            delivery.delivered = true;
            delivery.reason = format!("left on {head_branch} at {}", crate::words::short(&head));
        }
        Deliver::Ff => fast_forward(repo, state, &head, &mut delivery)?,
        Deliver::Push | Deliver::Pr | Deliver::Land => {
            let remote = route.remote.clone().unwrap_or_else(|| "origin".into());
            let mut refspecs = vec![(
                integration.clone(),
                format!("refs/heads/{}", state.integration.branch),
            )];
            if let Some(s) = &squash {
                refspecs.push((s.clone(), format!("refs/heads/{head_branch}")));
            }
            delivery.remote = Some(remote.clone());
            push_branches(repo, &remote, &refspecs, &mut delivery);
            if delivery.delivered {
                delivery.proof_ref = Some(conventions::proof_ref(&state.goal_id));
            }
            if delivery.delivered && request.to.opens_pull_request() {
                open_pull_request(repo, state, request, route, &head_branch, &mut delivery);
            }
        }
    }
    record(goal, state, EventBody::Delivery(delivery.clone()))?;
    if let (true, Some(remote)) = (delivery.proof_ref.is_some(), &delivery.remote) {
        if let Err(why) = publish_proof(repo, goal, &state.goal_id, remote)? {
            delivery.delivered = false;
            delivery.reason = format!("{}; but the proof was not pushed: {why}", delivery.reason);
            delivery.proof_ref = None;
            record(goal, state, EventBody::Delivery(delivery.clone()))?;
        }
    }
    Ok(delivery)
}

/// Where `--deliver pr` would find a GitHub token, for `omk doctor` (the
/// token itself is never shown).
pub fn describe_github() -> String {
    let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
    match GitHub::find(|n| std::env::var(n).ok(), "", "") {
        Ok(gh) => format!("pull requests via {api}, token from {}, repository {}", gh.token_source, gh.repo),
        Err(errors) if errors.contains(&DeliverError::NoToken) => format!(
            "pull requests via {api}: no token (set GH_TOKEN or GITHUB_TOKEN, or `gh auth login`); push needs only git"
        ),
        Err(_) => format!("pull requests via {api}: a token is set; the repository comes from GH_REPO or the remote's URL"),
    }
}

/// Records that a delivery the goal asked for could not start, and why.
pub fn refused(
    goal: &GoalDir,
    state: &mut GoalState,
    request: &Request,
    why: &Error,
) -> Result<()> {
    let delivery = Delivery {
        to: request.to,
        branch: state.integration.branch.clone(),
        reason: why.to_string(),
        ..Delivery::default()
    };
    record(goal, state, EventBody::Delivery(delivery))
}

/// One commit on top of the base with the integration tree, on the goal's
/// squash branch; the one already there when it is that commit.
fn squash(repo: &Repo, state: &GoalState) -> Result<String> {
    let branch = format!("refs/heads/{}", conventions::squash_branch(&state.goal_id));
    let tree = repo.tree_of(&state.integration.commit)?;
    let existing = repo.ref_target(&branch)?;
    // One already pushed is built on, so that the branch only moves forward
    // (a pull request's repaired head is a fast-forward); one never pushed
    // is made again on the base.
    let pushed = existing.as_ref().filter(|c| {
        state
            .earlier_deliveries
            .iter()
            .chain(&state.delivery)
            .flat_map(|d| &d.pushed)
            .any(|p| &p.commit == *c)
    });
    if let Some(commit) = &existing {
        let parents = repo.parents(commit)?;
        let on_base = parents == [state.base_commit.clone()];
        if repo.tree_of(commit)? == tree && (on_base || pushed.is_some()) {
            return Ok(commit.clone());
        }
    }
    let parent = pushed.cloned().unwrap_or_else(|| state.base_commit.clone());
    let slices: Vec<(String, String)> = state
        .integration
        .order
        .iter()
        .map(|id| {
            let title = state.slice(id).map(|s| s.title.clone()).unwrap_or_default();
            (id.clone(), title)
        })
        .collect();
    let message = conventions::squash_message(
        &state.goal_id,
        &state.goal,
        &slices,
        &state.integration.commit,
    );
    let commit = repo.commit_tree(&tree, &[&parent], &message)?;
    match existing {
        Some(old) => repo.update_ref(&branch, &commit, &old, "omk: squash goal")?,
        None => repo.create_ref(&branch, &commit, "omk: squash goal")?,
    }
    Ok(commit)
}

/// Fast-forwards the base branch to `head`, if it has not moved and is not
/// checked out anywhere; else says why, with the command that delivers.
fn fast_forward(repo: &Repo, state: &GoalState, head: &str, d: &mut Delivery) -> Result<()> {
    let Some(branch) = state.base_ref.clone() else {
        d.reason = "the base is not a branch, so there is nothing to fast-forward".into();
        return Ok(());
    };
    let short = branch.trim_start_matches("refs/heads/").to_string();
    d.branch = short.clone();
    if repo.ref_target(&branch)?.as_deref() != Some(state.base_commit.as_str()) {
        d.reason = format!("{short} moved since the goal started");
        return Ok(());
    }
    if let Some(at) = repo.checked_out_at(&branch)? {
        d.reason =
            format!(
            "{short} is checked out in {}; to deliver, run `git -C {} merge --ff-only {}` there",
            at.display(),
            at.display(),
            d.squash_commit.as_deref().unwrap_or(&state.integration.branch),
        );
        return Ok(());
    }
    match repo.update_ref(&branch, head, &state.base_commit, "omk: deliver goal") {
        Ok(()) => {
            d.delivered = true;
            d.reason = format!("{short} fast-forwarded to {head}");
        }
        Err(e) => d.reason = e.to_string(),
    }
    Ok(())
}

/// Pushes the branches; a refusal or a failed push is the delivery's
/// outcome, not an error.
fn push_branches(repo: &Repo, remote: &str, refspecs: &[(String, String)], d: &mut Delivery) {
    let pushed = match repo.push(remote, refspecs) {
        Ok(pushed) => pushed,
        Err(e) => {
            d.reason = format!("pushing to {remote} failed: {e}");
            return;
        }
    };
    let mut refused = Vec::new();
    for (commit, dst) in refspecs {
        match pushed.iter().find(|p| &p.dst == dst).map(|p| &p.status) {
            Some(PushStatus::Done) => d.pushed.push(PushedRef {
                name: dst.clone(),
                commit: commit.clone(),
            }),
            Some(PushStatus::Rejected(why)) => refused.push(format!("{dst} {why}")),
            None => refused.push(format!("{dst} was not pushed")),
        }
    }
    if refused.is_empty() {
        d.delivered = true;
        d.reason = format!("pushed {} to {remote}", d.branch);
    } else {
        d.reason = format!(
            "{remote} refused {}: it has commits this goal does not, and omk never force-pushes",
            refused.join(", ")
        );
    }
}

/// Opens or updates the pull request; GitHub's refusal is the outcome.
fn open_pull_request(
    repo: &Repo,
    state: &GoalState,
    request: &Request,
    route: &Route,
    head: &str,
    d: &mut Delivery,
) {
    let (Some(github), Some(base)) = (&route.github, &state.base_ref) else {
        d.delivered = false;
        d.reason = "no GitHub repository to open a pull request in".into();
        return;
    };
    let base = base.trim_start_matches("refs/heads/");
    let title = crate::words::clip(state.goal.lines().next().unwrap_or_default(), 200);
    let body = pull_request_body(repo, state, d);
    match github.open_or_update(head, base, &title, &body, request.options.draft) {
        Ok(pr) => {
            d.reason = format!(
                "pushed {} to {} and {} pull request #{} {}",
                d.branch,
                d.remote.as_deref().unwrap_or_default(),
                if pr.created { "opened" } else { "updated" },
                pr.number,
                pr.url
            );
            d.pull_request = Some(pr);
        }
        Err(e) => {
            d.delivered = false;
            d.reason = format!("pushed {}, but no pull request: {e}", d.branch);
        }
    }
}

/// The Markdown proof, saying first what a partial delivery leaves out.
fn pull_request_body(repo: &Repo, state: &GoalState, d: &Delivery) -> String {
    let mut body = String::new();
    if !d.missing.is_empty() {
        body += &format!(
            "> **Partial delivery:** the goal is `{}`; these slices are not in this branch: {}\n\n",
            state.status,
            d.missing
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // The proof is pushed with the pull request's branch.
    body += &crate::proof::markdown(state, Some(repo), d.remote.as_deref().or(Some("origin")));
    crate::words::clip(&body, BODY_LIMIT)
}

/// Commits the goal's log and proof as its proof ref, on top of the last
/// one, and pushes it (a fast-forward). The push's refusal is returned.
fn publish_proof(
    repo: &Repo,
    goal: &GoalDir,
    goal_id: &str,
    remote: &str,
) -> Result<Result<(), String>> {
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
    };
    let log = read(goal.events())?;
    let proof = read(goal.proof())?;
    let name = conventions::proof_ref(goal_id);
    let parent = repo.ref_target(&name)?;
    let commit = repo.commit_files(
        &[(PROOF_LOG, &log), (PROOF_FILE, &proof)],
        parent.as_deref(),
        &format!("omk: proof of goal {goal_id}\n\nOmk-Goal: {goal_id}\n"),
    )?;
    match &parent {
        Some(old) => repo.update_ref(&name, &commit, old, "omk: proof")?,
        None => repo.create_ref(&name, &commit, "omk: proof")?,
    }
    Ok(match repo.push(remote, &[(commit, name.clone())]) {
        Ok(pushed) if pushed.iter().all(|p| p.status == PushStatus::Done) && !pushed.is_empty() => {
            Ok(())
        }
        Ok(pushed) => Err(
            match pushed.into_iter().find_map(|p| match p.status {
                PushStatus::Rejected(why) => Some(why),
                PushStatus::Done => None,
            }) {
                Some(why) => format!("{remote} refused {name}: {why}"),
                None => format!("{remote} did not take {name}"),
            },
        ),
        Err(e) => Err(e.to_string()),
    })
}

/// Appends `body` to a goal no supervisor drives, folds it, and rewrites
/// the proof pinned to the log's new end.
pub(crate) fn record(goal: &GoalDir, state: &mut GoalState, body: EventBody) -> Result<()> {
    let (mut log, _) = EventLog::open(&goal.events())?;
    let event = log.append(body)?;
    state.apply(&event);
    state.log_end = Some(LogEnd {
        events: event.seq,
        hash: log.last_hash().to_string(),
    });
    crate::proof::write(goal, state)
}
