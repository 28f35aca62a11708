//! Taking over a goal whose controller stopped, and giving an ended goal's
//! slices more attempts.

use super::*;

/// Takes over a goal whose controller stopped (crashed, killed, cancelled)
/// and runs it to its end. A goal that already ended `ready` or `not_ready`
/// is returned as it is.
pub async fn resume_goal(
    dir: &Path,
    id: &str,
    raised: Raised,
    reporter: Reporter,
) -> Result<Finished> {
    if raised.max_attempts == Some(0) {
        return Err(Error::Usage("a slice needs at least one attempt".into()));
    }
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    let lock = lock_to_drive(&goal)?;
    let (log, events) = EventLog::open(&goal.events())?;
    let state = GoalState::from_events(&events);
    if matches!(state.status, GoalStatus::Ready | GoalStatus::NotReady) {
        return Ok(Finished {
            state,
            goal,
            already_ended: true,
        });
    }
    let agent = take_over(&goal, &state, &reporter)?;
    drive(
        repo,
        store,
        goal,
        Start::Resume {
            log,
            events,
            raised,
        },
        agent,
        reporter,
        lock,
    )
    .await
}

/// Readies this process to take over `goal`, whose state is `state`: the
/// agent is installed, the sandbox as required, and whatever its last
/// controller left running is stopped. Returns the goal's agent.
pub(super) fn take_over(
    goal: &GoalDir,
    state: &GoalState,
    reporter: &Reporter,
) -> Result<AgentSpec> {
    let agent = AgentSpec::parse(&state.agent)?;
    agent.check_installed()?;
    check_sandbox(state.settings.limits.require_sandbox, reporter)?;
    crate::capture::set_limit(
        state
            .settings
            .limits
            .log_limit
            .unwrap_or(crate::capture::DEFAULT_LIMIT),
    );
    let killed = crate::process::kill_orphans(&goal.id);
    if killed > 0 {
        reporter.notice(&format!(
            "stopped {killed} process group(s) the last controller left running"
        ));
    }
    Ok(agent)
}

/// `goal retry`: gives the `slices` of an ended goal (default: every one
/// that did not merge) fresh attempts, up to `max_attempts` more each
/// (default: the goal's own limit), and runs the goal on to its end: same
/// log, same integration branch.
pub async fn retry_goal(
    dir: &Path,
    id: &str,
    slices: &[String],
    max_attempts: Option<u32>,
    budget: Budget,
    reporter: Reporter,
) -> Result<Finished> {
    if max_attempts == Some(0) {
        return Err(Error::Usage("at least one more attempt is needed".into()));
    }
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    {
        let _lock = lock_to_drive(&goal)?;
        let (mut log, events) = EventLog::open(&goal.events())?;
        let state = GoalState::from_events(&events);
        let unknown: Vec<&String> = slices.iter().filter(|s| state.slice(s).is_none()).collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(Error::Usage(format!(
                "goal {} has no slice {}; its slices are {}",
                goal.id,
                names.join(", "),
                state
                    .slices
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let chosen: Vec<String> = state
            .slices
            .iter()
            .filter(|s| s.status != SliceStatus::Merged)
            .filter(|s| slices.is_empty() || slices.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        if state.status == GoalStatus::Ready {
            return Ok(Finished {
                state,
                goal,
                already_ended: true,
            });
        }
        let used = chosen
            .iter()
            .filter_map(|id| state.slice(id).map(|s| s.attempts))
            .max()
            .unwrap_or(0);
        let more = max_attempts.unwrap_or(state.settings.max_attempts);
        log.append(EventBody::GoalRetried {
            slices: chosen,
            max_attempts: used + more,
        })?;
    }
    resume_goal(dir, id, budget.raised(None), reporter).await
}
