//! Landing a goal's pull request to the end (`omk goal land`, `goal run
//! --deliver land`): follow it; when required checks fail or reviewers ask
//! for changes, send that back to the slices it concerns, run the goal
//! again until it is ready, deliver the new head (a fast-forward of the
//! pushed branch, never a forced push), answer the review threads, and
//! follow again — until it merges or cannot.

use super::*;
use crate::deliver::land::{feedback, LandOptions, Landed};
use crate::store::landing::LandStep;

/// Lands goal `id`'s pull request; `show` says each landing step, and the
/// runs that repair the slices show a live view when `live`. Returns how
/// it ended and the goal's state.
pub async fn land(
    dir: &Path,
    id: &str,
    options: &LandOptions,
    live: bool,
    show: impl Fn(&EventBody),
) -> Result<(Landed, GoalState)> {
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    let _lock = lock_to_drive(&goal)?;
    let (_, events) = EventLog::open(&goal.events())?;
    let mut state = GoalState::from_events(&events);
    let landed = land_locked(&repo, &store, &goal, &mut state, options, live, show).await?;
    Ok((landed, state))
}

/// [`land`], for a caller that holds the goal's lock and its `state`.
pub(super) async fn land_locked(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    state: &mut GoalState,
    options: &LandOptions,
    live: bool,
    show: impl Fn(&EventBody),
) -> Result<Landed> {
    // A reproduction, then slices, interrupted finish first.
    if state.integration.reproducing.is_some() {
        *state = run_to_end(repo, store, goal, state, live).await?;
        if state.status != GoalStatus::Ready {
            let reason = format!("reproducing a failed check ended {}", state.status);
            return stop(goal, state, reason, &show);
        }
    }
    if repairing(state) {
        if let Some(stopped) = repair(repo, store, goal, state, live, &show).await? {
            return Ok(stopped);
        }
    }
    loop {
        let landed = crate::deliver::land::land_goal(repo, goal, state, options, &show).await?;
        let Landed::Asked {
            head,
            findings,
            failed,
        } = landed
        else {
            return Ok(landed);
        };
        if let Some(stopped) =
            reproduce(repo, store, goal, state, &head, &findings, live, &show).await?
        {
            return Ok(stopped);
        }
        let number = state.landing.as_ref().map_or(0, |l| l.number);
        let routed = feedback::route(state, number, &head, &findings);
        if routed.told.is_empty() {
            let reason = match routed.spent.as_slice() {
                [] => format!("{failed}, and no slice of the goal is there to repair it"),
                spent => format!(
                    "{failed}; it concerns {}, which {} no attempt left of {}",
                    spent.join(", "),
                    if spent.len() == 1 { "has" } else { "have" },
                    state.settings.max_attempts
                ),
            };
            return stop(goal, state, reason, &show);
        }
        let step = EventBody::Landing(LandStep::Reopened {
            head,
            asked: routed.asked,
            told: routed.told,
        });
        show(&step);
        crate::deliver::record(goal, state, step)?;
        if let Some(stopped) = repair(repo, store, goal, state, live, &show).await? {
            return Ok(stopped);
        }
    }
}

/// Whether the goal was reopened by its pull request's feedback and its
/// run was interrupted (killed, cancelled) before it ended.
fn repairing(state: &GoalState) -> bool {
    matches!(state.status, GoalStatus::Running | GoalStatus::Cancelled)
        && state
            .landing
            .as_ref()
            .is_some_and(|l| !l.feedback.is_empty() && l.merged.is_none())
}

/// Runs the reopened goal to its end, delivers it again to its pull
/// request, and answers the review threads; or says why landing stops.
async fn repair(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    state: &mut GoalState,
    live: bool,
    show: impl Fn(&EventBody),
) -> Result<Option<Landed>> {
    // Delivered again as it was: to the same pull request.
    let last = state
        .delivery
        .iter()
        .chain(state.earlier_deliveries.iter().rev())
        .find(|d| d.pull_request.is_some())
        .cloned();
    let request = crate::deliver::Request {
        to: Deliver::Pr,
        options: DeliverOptions {
            squash: last.as_ref().is_some_and(|d| d.squash_commit.is_some()),
            draft: state.settings.deliver_options.draft,
            remote: last.as_ref().and_then(|d| d.remote.clone()),
        },
        partial: false,
    };
    *state = run_again(repo, store, goal, state, &request, live).await?;
    if state.status != GoalStatus::Ready {
        let reason = format!(
            "the slices sent feedback ended {}{}",
            state.status,
            state
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        return stop(goal, state, reason, &show).map(Some);
    }
    match &state.delivery {
        Some(d) if d.delivered && d.pull_request.is_some() => {}
        d => {
            let why = d.as_ref().map_or("it was not delivered", |d| &d.reason);
            let reason = format!("the repaired head did not reach the pull request: {why}");
            return stop(goal, state, reason, &show).map(Some);
        }
    }
    for refused in crate::deliver::land::answer_threads(repo, goal, state, &show).await? {
        eprintln!("omk: could not reply on {refused}");
    }
    Ok(None)
}

/// Reproduces on this machine each failed check of `findings` that a gate
/// maps to (`ci`) and that was not reproduced on `head` yet: the goal runs
/// again only to run that gate, on the head and then on the branch's
/// merges, and records what it found, which [`feedback::route`] follows.
/// Returns why landing stops, if such a run did not end `ready`.
#[allow(clippy::too_many_arguments)]
async fn reproduce(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    state: &mut GoalState,
    head: &str,
    findings: &[crate::deliver::land::Finding],
    live: bool,
    show: impl Fn(&EventBody),
) -> Result<Option<Landed>> {
    for f in findings {
        let crate::store::landing::Source::Check { name } = &f.from else {
            continue;
        };
        let Some(gate) = state
            .settings
            .gates
            .iter()
            .find(|g| g.ci.as_deref() == Some(name.as_str()))
        else {
            continue;
        };
        let done = |state: &GoalState| {
            state
                .landing
                .as_ref()
                .and_then(|l| l.reproduction(head, name))
                .cloned()
        };
        if done(state).is_some() {
            continue;
        }
        let step = EventBody::Landing(LandStep::Reproducing {
            head: head.into(),
            check: name.clone(),
            gate: gate.name.clone(),
        });
        show(&step);
        crate::deliver::record(goal, state, step)?;
        *state = run_to_end(repo, store, goal, state, live).await?;
        match done(state) {
            Some(found) if state.status == GoalStatus::Ready => {
                show(&EventBody::Landing(LandStep::Reproduced(found)));
            }
            _ => {
                let reason = format!("reproducing check `{name}` ended {}", state.status);
                return stop(goal, state, reason, &show).map(Some);
            }
        }
    }
    Ok(None)
}

/// Runs goal `goal`, reopened, to its end and delivers it as `request`
/// asks; returns its state. The caller holds the goal's lock.
async fn run_again(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    state: &GoalState,
    request: &crate::deliver::Request,
    live: bool,
) -> Result<GoalState> {
    let ended = run_to_end(repo, store, goal, state, live).await?;
    deliver_as(repo, goal, ended, request)
}

/// Runs goal `goal`, taken over, to its end; returns its state. The
/// caller holds the goal's lock.
async fn run_to_end(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    state: &GoalState,
    live: bool,
) -> Result<GoalState> {
    let reporter = Reporter::new(live);
    let agent = resume::take_over(goal, state, &reporter)?;
    let (log, events) = EventLog::open(&goal.events())?;
    let start = Start::Resume {
        log,
        events,
        raised: Raised::default(),
    };
    supervise(repo, store, goal, start, agent, reporter).await
}

/// Records that landing stopped, and why.
fn stop(
    goal: &GoalDir,
    state: &mut GoalState,
    reason: String,
    show: impl Fn(&EventBody),
) -> Result<Landed> {
    let body = EventBody::Landing(LandStep::Stopped {
        reason: reason.clone(),
    });
    show(&body);
    crate::deliver::record(goal, state, body)?;
    Ok(Landed::Stopped(reason))
}
