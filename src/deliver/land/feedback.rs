//! Where what a pull request was told goes: a failed check that its gate
//! reproduced here to the slice whose merge broke it, another to the
//! slices whose changed files its log names (else to every slice of the
//! pull request), a review comment to the slices whose write scope holds
//! its path (else to every slice), a review's own words to every slice —
//! each slice within its attempts. Pure: it reads the goal's state and
//! decides.

use super::Finding;
use crate::plan::WriteScope;
use crate::state::{GoalState, SliceStatus};
use crate::store::landing::{Asked, Found, Source, Told};

/// Where the findings went, and what each reopened slice is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Each finding with the slices it concerns.
    pub asked: Vec<Asked>,
    /// What each slice with attempts left is told, in plan order.
    pub told: Vec<Told>,
    /// Slices it concerns that have no attempt left.
    pub spent: Vec<String>,
}

/// Routes `findings` about pull request `number`'s head `head` to the
/// slices of the goal in `state`.
pub fn route(state: &GoalState, number: u64, head: &str, findings: &[Finding]) -> Routed {
    let merged: Vec<&str> = state
        .slices
        .iter()
        .filter(|s| s.status == SliceStatus::Merged)
        .map(|s| s.id.as_str())
        .collect();
    let asked: Vec<Asked> = findings
        .iter()
        .map(|f| {
            if let Some(asked) = reproduced(state, &merged, head, f) {
                return asked;
            }
            let mut slices = concerned(state, &merged, f);
            if slices.is_empty() {
                slices = merged.iter().map(|s| s.to_string()).collect();
            }
            Asked {
                from: f.from.clone(),
                slices,
                text: f.text.clone(),
            }
        })
        .collect();
    let mut routed = Routed {
        asked,
        ..Routed::default()
    };
    for &i in &state.settings.order {
        let Some(s) = state.slices.get(i) else {
            continue;
        };
        let mine: Vec<&Asked> = routed
            .asked
            .iter()
            .filter(|a| a.slices.contains(&s.id))
            .collect();
        if mine.is_empty() {
            continue;
        }
        if s.attempts >= state.settings.max_attempts {
            routed.spent.push(s.id.clone());
            continue;
        }
        routed.told.push(Told {
            slice: s.id.clone(),
            feedback: told(number, head, &mine),
        });
    }
    routed
}

/// A failed check that its gate reproduced on this machine goes to the
/// slice whose merge the gate fails on first, with the gate's log.
fn reproduced(state: &GoalState, merged: &[&str], head: &str, finding: &Finding) -> Option<Asked> {
    let Source::Check { name } = &finding.from else {
        return None;
    };
    let r = state.landing.as_ref()?.reproduction(head, name)?;
    let Found::Culprit { slice, excerpt, .. } = &r.found else {
        return None;
    };
    merged.contains(&slice.as_str()).then(|| Asked {
        from: finding.from.clone(),
        slices: vec![slice.clone()],
        text: format!(
            "Gate `{}` reproduced this failure here; it fails first where slice `{slice}` merged:\n{}\n\nThe check's own log:\n{}",
            r.gate,
            excerpt.as_deref().unwrap_or("(its log is empty)").trim_end(),
            finding.text
        ),
    })
}

/// The merged slices a finding names.
fn concerned(state: &GoalState, merged: &[&str], finding: &Finding) -> Vec<String> {
    let slices = merged.iter().filter_map(|id| state.slice(id));
    match &finding.from {
        Source::Check { .. } => slices
            .filter(|s| {
                s.merged_files
                    .iter()
                    .chain(&s.changed_files)
                    .any(|f| names(&finding.text, f))
            })
            .map(|s| s.id.clone())
            .collect(),
        Source::Comment { path, .. } => slices
            .filter(|s| {
                let scope = state
                    .spec(&s.id)
                    .and_then(|spec| WriteScope::new(&spec.write_scope).ok());
                scope.is_some_and(|w| w.contains(path)) || s.merged_files.contains(path)
            })
            .map(|s| s.id.clone())
            .collect(),
        Source::Review { .. } => vec![],
    }
}

/// Whether `text` names the file `path`: as a whole path, not as the end
/// of a longer name (`a.rs` is not named by `data.rs`).
fn names(text: &str, path: &str) -> bool {
    if path.is_empty() {
        return false;
    }
    let part = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + path.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// What a reopened slice's agent is told: each finding that concerns it.
fn told(number: u64, head: &str, mine: &[&Asked]) -> String {
    let mut text = format!(
        "Your work merged into the goal's integration and went out as pull request #{number}. \
         On its head {} the following came back, and some of it concerns your slice. \
         Your worktree holds the integration (every slice's merged work, yours included): \
         change what is needed within your write scope, then finish.\n",
        crate::words::short(head)
    );
    for a in mine {
        match &a.from {
            Source::Check { name } => {
                let fence = if a.text.contains("```") {
                    "~~~~"
                } else {
                    "```"
                };
                text += &format!(
                    "\n## The check `{name}` failed\n\n{fence}\n{}\n{fence}\n",
                    a.text.trim_end()
                );
            }
            from => {
                let quoted: Vec<String> = a.text.lines().map(|l| format!("> {l}")).collect();
                text += &format!("\n## The reviewer's {from}\n\n{}\n", quoted.join("\n"));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SliceState;

    fn state(slices: &[(&str, &[&str], &[&str], u32)]) -> GoalState {
        let mut state = GoalState::default();
        state.settings.max_attempts = 3;
        let mut plan = crate::plan::Plan::default();
        for (i, (id, scope, files, attempts)) in slices.iter().enumerate() {
            state.slices.push(SliceState {
                id: id.to_string(),
                status: SliceStatus::Merged,
                attempts: *attempts,
                merged_files: files.iter().map(|f| f.to_string()).collect(),
                ..SliceState::default()
            });
            state.settings.order.push(i);
            state.settings.index.insert(id.to_string(), i);
            plan.slices.push(crate::plan::SliceSpec {
                id: id.to_string(),
                title: String::new(),
                prompt: "p".into(),
                write_scope: scope.iter().map(|s| s.to_string()).collect(),
                depends_on: vec![],
                gates: None,
            });
        }
        state.settings.plan = Some(plan);
        state
    }

    fn check(name: &str, log: &str) -> Finding {
        Finding {
            from: Source::Check { name: name.into() },
            text: log.into(),
        }
    }

    fn comment(id: u64, path: &str) -> Finding {
        Finding {
            from: Source::Comment {
                id,
                author: "ann".into(),
                path: path.into(),
                line: Some(3),
            },
            text: "please rename this".into(),
        }
    }

    fn told_to(routed: &Routed) -> Vec<&str> {
        routed.told.iter().map(|t| t.slice.as_str()).collect()
    }

    #[test]
    fn a_failed_check_goes_to_the_slices_whose_files_its_log_names() {
        let s = state(&[
            ("api", &["src/api/**"], &["src/api/a.rs"], 1),
            ("cli", &["src/cli/**"], &["src/cli/data.rs"], 1),
        ]);
        let log = "error[E0425]: cannot find value\n --> src/api/a.rs:12:5\nFAILED";
        let routed = route(&s, 4, "abcdef1234", &[check("test", log)]);
        assert_eq!(told_to(&routed), ["api"]);
        assert_eq!(routed.asked[0].slices, ["api"]);
        let feedback = &routed.told[0].feedback;
        assert!(feedback.contains("pull request #4") && feedback.contains("abcdef1"));
        assert!(
            feedback.contains("## The check `test` failed")
                && feedback.contains("src/api/a.rs:12:5")
        );
        // `a.rs` is not named by a log that names only `data.rs`.
        let routed = route(&s, 4, "abcdef1234", &[check("test", "panicked in data.rs")]);
        assert_eq!(
            told_to(&routed),
            ["api", "cli"],
            "names no file of one slice: all"
        );
    }

    #[test]
    fn a_check_its_gate_reproduced_goes_to_the_culprit_whatever_its_log_names() {
        let mut s = state(&[
            ("api", &["src/api/**"], &["src/api/a.rs"], 1),
            ("cli", &["src/cli/**"], &["src/cli/main.rs"], 1),
        ]);
        let log = "FAILED at src/api/a.rs:3";
        let found = |head: &str, found| crate::store::landing::Reproduced {
            head: head.into(),
            check: "test".into(),
            gate: "unit".into(),
            runs: 2,
            found,
        };
        let landing = s.landing.get_or_insert_with(Default::default);
        landing.reproduced.push(found(
            "h1",
            Found::Culprit {
                slice: "cli".into(),
                tree: "t".into(),
                excerpt: Some("assertion failed: cli prints usage".into()),
            },
        ));
        landing.reproduced.push(found("h2", Found::NotReproduced));
        let routed = route(&s, 1, "h1", &[check("test", log)]);
        assert_eq!(told_to(&routed), ["cli"]);
        let feedback = &routed.told[0].feedback;
        assert!(
            feedback.contains("Gate `unit` reproduced this failure here")
                && feedback.contains("cli prints usage")
                && feedback.contains(log),
            "{feedback}"
        );
        // Not reproduced on another head: the log decides.
        let routed = route(&s, 1, "h2", &[check("test", log)]);
        assert_eq!(told_to(&routed), ["api"]);
    }

    #[test]
    fn a_review_comment_goes_to_the_slice_whose_scope_holds_its_path_and_a_review_to_all() {
        let s = state(&[
            ("api", &["src/api/**"], &["src/api/a.rs"], 1),
            ("cli", &["src/cli/**"], &["src/cli/main.rs"], 1),
        ]);
        let routed = route(&s, 1, "h", &[comment(9, "src/cli/new.rs")]);
        assert_eq!(told_to(&routed), ["cli"]);
        assert!(routed.told[0].feedback.contains(
            "## The reviewer's comment 9 by @ann on src/cli/new.rs:3\n\n> please rename this"
        ));
        let review = Finding {
            from: Source::Review {
                id: 7,
                author: "bo".into(),
            },
            text: "too many files".into(),
        };
        let routed = route(&s, 1, "h", &[review, comment(9, "docs/elsewhere.md")]);
        assert_eq!(told_to(&routed), ["api", "cli"]);
        assert_eq!(
            routed.asked[1].slices,
            ["api", "cli"],
            "on no slice's path: all"
        );
    }

    #[test]
    fn a_slice_without_attempts_left_is_not_reopened_but_said() {
        let s = state(&[
            ("api", &["src/api/**"], &["src/api/a.rs"], 3),
            ("cli", &["src/cli/**"], &["src/cli/main.rs"], 1),
        ]);
        let routed = route(&s, 1, "h", &[check("test", "src/api/a.rs failed")]);
        assert!(routed.told.is_empty());
        assert_eq!(routed.spent, ["api"]);
        assert_eq!(routed.asked[0].slices, ["api"]);
    }
}
