//! omk's git conventions, in one place: the names of the branches a goal
//! creates and the trailers of the commits it writes.
//!
//! Every branch omk writes is under [`NAMESPACE`]; omk moves no other.

/// The prefix of every branch omk creates.
pub const NAMESPACE: &str = "omk/";

/// The last part of a goal's integration branch name.
pub const INTEGRATION: &str = "integration";

/// Whether `branch` (a short name, `refs/heads/` stripped) is omk's.
pub fn is_omk_branch(branch: &str) -> bool {
    branch.starts_with(NAMESPACE)
}

/// The prefix of every branch of goal `goal_id`.
pub fn goal_prefix(goal_id: &str) -> String {
    format!("{NAMESPACE}{goal_id}/")
}

/// The branch a slice's attempts commit to.
pub fn slice_branch(goal_id: &str, slice: &str) -> String {
    format!("{}{slice}", goal_prefix(goal_id))
}

/// The goal's integration branch.
pub fn integration_branch(goal_id: &str) -> String {
    format!("{}{INTEGRATION}", goal_prefix(goal_id))
}

/// The last part of the branch a squashed delivery is written to.
pub const SQUASH: &str = "squash";

/// The branch holding a goal's squashed delivery: one commit on the base.
pub fn squash_branch(goal_id: &str) -> String {
    format!("{}{SQUASH}", goal_prefix(goal_id))
}

/// Where a goal's proof travels: a commit whose tree holds the event log
/// and the proof, pushed beside the integration branch.
pub const PROOFS: &str = "refs/omk/proofs/";

/// Where each running goal's integration candidate is held, so that what
/// its gates are to judge is reachable (a `git gc --prune=now` meanwhile
/// takes nothing it needs).
pub const CANDIDATES: &str = "refs/omk/candidates/";

/// The ref holding goal `goal_id`'s candidate tip while it runs.
pub fn candidate_ref(goal_id: &str) -> String {
    format!("{CANDIDATES}{goal_id}")
}

/// The ref of goal `goal_id`'s proof.
pub fn proof_ref(goal_id: &str) -> String {
    format!("{PROOFS}{goal_id}")
}

/// The files of a proof commit.
pub const PROOF_LOG: &str = "events.jsonl";
/// The proof file of a proof commit.
pub const PROOF_FILE: &str = "proof.json";

/// The message of a squashed delivery: the goal, then a line per slice.
pub fn squash_message(
    goal_id: &str,
    goal: &str,
    slices: &[(String, String)],
    integration: &str,
) -> String {
    let mut message = format!("{goal}\n\n");
    for (id, title) in slices {
        match title.is_empty() {
            true => message += &format!("- {id}\n"),
            false => message += &format!("- {id}: {title}\n"),
        }
    }
    message + &format!("\nOmk-Goal: {goal_id}\nOmk-Integration: {integration}\n")
}

/// Whether `branch` holds some goal's result: its integration branch, or
/// its squashed delivery.
pub fn is_result_branch(branch: &str) -> bool {
    is_integration_branch(branch)
        || (is_omk_branch(branch) && branch.ends_with(&format!("/{SQUASH}")))
}

/// Whether `branch` is some goal's integration branch.
pub fn is_integration_branch(branch: &str) -> bool {
    is_omk_branch(branch) && branch.ends_with(&format!("/{INTEGRATION}"))
}

/// The goal id in one of omk's branch names.
pub fn goal_of(branch: &str) -> Option<&str> {
    branch.strip_prefix(NAMESPACE)?.split('/').next()
}

/// The trailers that mark a slice attempt's commit as omk's.
fn attempt_trailers(goal_id: &str, slice: &str, attempt: u32) -> String {
    format!("Omk-Goal: {goal_id}\nOmk-Slice: {slice}\nOmk-Attempt: {attempt}\n")
}

/// The message of a slice attempt's commit.
pub fn slice_message(goal_id: &str, slice: &str, title: &str, attempt: u32) -> String {
    let subject = if title.is_empty() { slice } else { title };
    format!(
        "omk: {subject}\n\n{}",
        attempt_trailers(goal_id, slice, attempt)
    )
}

/// Whether `message` is that of the commit of this slice attempt.
pub fn is_attempt_commit(message: &str, goal_id: &str, slice: &str, attempt: u32) -> bool {
    attempt_trailers(goal_id, slice, attempt)
        .lines()
        .all(|t| message.lines().any(|l| l == t))
}

/// The message of the one commit a slice contributes: its title, a short
/// body from its task, and trailers naming the goal, the slice and how
/// many attempts it took.
pub fn contributed_message(
    goal_id: &str,
    slice: &str,
    title: &str,
    task: &str,
    attempts: u32,
) -> String {
    let title = title.lines().next().unwrap_or_default().trim();
    let title = match title.is_empty() {
        true => format!("slice {slice}"),
        false => title.chars().take(100).collect(),
    };
    let mut body: String = task
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(600)
        .collect();
    if !body.is_empty() {
        body += "\n\n";
    }
    format!("{title}\n\n{body}Omk-Goal: {goal_id}\nOmk-Slice: {slice}\nOmk-Attempts: {attempts}\n")
}

/// The message of the integrator's merge of a slice.
pub fn merge_message(goal_id: &str, slice: &str, attempt: u32) -> String {
    format!(
        "omk: merge slice {slice} (attempt {attempt})\n\nOmk-Goal: {goal_id}\nOmk-Slice: {slice}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_trailers_round_trip() {
        assert_eq!(slice_branch("g1", "api"), "omk/g1/api");
        assert_eq!(integration_branch("g1"), "omk/g1/integration");
        assert!(is_integration_branch("omk/g1/integration"));
        assert!(!is_integration_branch("omk/g1/api"));
        assert!(is_result_branch("omk/g1/squash") && is_result_branch("omk/g1/integration"));
        assert!(!is_result_branch("omk/g1/api"));
        assert_eq!(goal_of("omk/g1/api"), Some("g1"));
        assert_eq!(goal_of("main"), None);
        let m = slice_message("g1", "api", "", 2);
        assert!(m.starts_with("omk: api\n"));
        assert!(is_attempt_commit(&m, "g1", "api", 2));
        assert!(!is_attempt_commit(&m, "g1", "api", 1));
        assert!(!is_attempt_commit(&m, "g1", "ap", 2));
    }
}
