//! The integration's next step: judge, advance, bisect, eject.

use super::{Action, Decider};
use crate::actors::gate::Priority;
use crate::state::{GoalState, Link, TreeVerdict};
use crate::store::landing::{Found, Reproduced, Reproduction};

impl Decider {
    /// What the integration does next: judge the newest candidate, move the
    /// branch to a candidate that passed, or find the first merge of a
    /// failed candidate whose tree fails (bisection: the branch passed, the
    /// failed commit did not, so the first failing merge lies between) and
    /// take it out.
    pub(super) fn integration_step(&mut self, state: &GoalState) -> Vec<Action> {
        let i = &state.integration;
        if self.advancing.is_some() || i.testing.is_some() {
            return vec![];
        }
        if let Some(r) = &i.reproducing {
            return reproduction_step(state, r);
        }
        let gates = state.integration_gates();
        if gates.is_empty() {
            // Nothing judges the integration: every merge is as good as it gets.
            return i
                .candidate
                .last()
                .map(|l| self.advance(l))
                .into_iter()
                .collect();
        }
        let verdicts: Vec<TreeVerdict> = i
            .candidate
            .iter()
            .map(|l| i.verdict_on(&l.tree, &gates))
            .collect();
        let test = |commit: &str, tree: &str| Action::Integrate {
            commit: commit.into(),
            tree: tree.into(),
            priority: Priority::Candidate,
        };
        let Some(failed) = verdicts.iter().position(|v| *v == TreeVerdict::Failed) else {
            if let Some(passed) = verdicts.iter().rposition(|v| *v == TreeVerdict::Passed) {
                return vec![self.advance(&i.candidate[passed])];
            }
            if let Some(tip) = i.candidate.last() {
                if let Some(stop) = self.candidate_unjudged(state, &tip.tree) {
                    return stop;
                }
                return vec![test(&tip.commit, &tip.tree)];
            }
            // A retried goal whose gates were changed: the branch is judged again.
            // (A merging slice is not settled.)
            if state.slices_settled()
                && !i.order.is_empty()
                && i.verdict_on(&i.tree, &gates) == TreeVerdict::Unknown
            {
                return vec![test(&i.commit, &i.tree)];
            }
            return vec![];
        };
        let passed = verdicts[..failed]
            .iter()
            .rposition(|v| *v == TreeVerdict::Passed);
        let unknown = passed.map_or(0, |p| p + 1);
        if unknown < failed {
            let mid = &i.candidate[(unknown + failed) / 2];
            if let Some(stop) = self.candidate_unjudged(state, &mid.tree) {
                return stop;
            }
            return vec![test(&mid.commit, &mid.tree)];
        }
        // Found: the merge at `failed` is the first whose tree fails.
        let culprit = &i.candidate[failed];
        let gate = gates
            .iter()
            .find(|g| {
                i.last_result(&g.name, &culprit.tree)
                    .is_some_and(|r| !r.passed)
            })
            .map(|g| g.name.clone())
            .unwrap_or_default();
        let mut actions = Vec::new();
        let onto = match passed {
            Some(p) => {
                actions.push(self.advance(&i.candidate[p]));
                (&i.candidate[p].commit).into()
            }
            None => (&i.commit).into(),
        };
        actions.push(Action::Eject {
            slice: (&culprit.slice).into(),
            gate,
            tree: (&culprit.tree).into(),
            onto,
            remerge: i.candidate[failed + 1..]
                .iter()
                .map(|l| (&l.slice).into())
                .collect(),
        });
        actions
    }

    /// Integration gates that could not run on `tree` too often: the goal
    /// stops as omk's or the machine's failure, blaming no slice.
    fn candidate_unjudged(&mut self, state: &GoalState, tree: &str) -> Option<Vec<Action>> {
        let times = state.integration.unjudged.get(tree).copied().unwrap_or(0);
        if times <= super::MAX_UNJUDGED {
            return None;
        }
        self.halt(
            crate::state::GoalStatus::Failed,
            format!(
                "the integration gates could not run on tree {}, {times} times in a row; this is a failure of omk or of this machine, not of a slice",
                crate::words::short(tree)
            ),
        );
        Some(vec![Action::CancelAll])
    }

    pub(super) fn advance(&mut self, to: &Link) -> Action {
        self.advancing = Some(to.commit.clone());
        Action::Advance {
            commit: (&to.commit).into(),
            tree: (&to.tree).into(),
        }
    }
}

/// A failed check's reproduction: its gate runs on the branch's head and,
/// if it fails there too, on the branch's merges — bisected, as the
/// goal's base passed its gates — to the first merge it fails on.
fn reproduction_step(state: &GoalState, r: &Reproduction) -> Vec<Action> {
    let merges = &state.integration.merges;
    let found = |found| {
        vec![Action::Reproduced(Reproduced {
            head: r.head.clone(),
            check: r.check.clone(),
            gate: r.gate.clone(),
            runs: r.results.len() as u32,
            found,
        })]
    };
    if let Some(g) = r.results.iter().find(|g| !g.outcome.judged()) {
        return found(Found::NotRun {
            why: g.outcome.to_string(),
        });
    }
    let test = |l: &Link| {
        vec![Action::Integrate {
            commit: (&l.commit).into(),
            tree: (&l.tree).into(),
            priority: Priority::Candidate,
        }]
    };
    let verdicts: Vec<Option<bool>> = merges.iter().map(|l| r.passed_on(&l.tree)).collect();
    let (Some(head), Some(&on_head)) = (merges.last(), verdicts.last()) else {
        return found(Found::NotReproduced);
    };
    let failed = match on_head {
        None => return test(head),
        Some(true) => return found(Found::NotReproduced),
        Some(false) => verdicts
            .iter()
            .position(|v| *v == Some(false))
            .unwrap_or(merges.len() - 1),
    };
    let passed = verdicts[..failed].iter().rposition(|v| *v == Some(true));
    let unknown = passed.map_or(0, |p| p + 1);
    if unknown < failed {
        return test(&merges[(unknown + failed) / 2]);
    }
    let culprit = &merges[failed];
    found(Found::Culprit {
        slice: culprit.slice.clone(),
        tree: culprit.tree.clone(),
        excerpt: r
            .results
            .iter()
            .rev()
            .find(|g| g.tree == culprit.tree)
            .and_then(|g| g.excerpt.clone()),
    })
}
