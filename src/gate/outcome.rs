//! How a gate ended: a typed outcome, written in the record as the words
//! people read (`exit 1`, `approved`, `not run: …`), and read back from them.

use crate::process::Exit;

/// How one gate ended on one tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum GateOutcome {
    /// Its command ran and ended so.
    Ran(Exit),
    /// A reviewer's verdict.
    Reviewed(ReviewOutcome),
    /// It was not started: its checkout could not be made to hold the tree,
    /// or a review had no change to read.
    NotRun(String),
    /// It was started and could not run: its program, or omk itself (a
    /// panic of omk's ends here, with its message).
    CouldNotRun(String),
    /// A reviewer changed the tree it was to read only.
    ReviewerWrote,
    /// Words an older omk recorded that no variant above reads.
    Other(String),
}

/// What a review gate's reviewer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// `approve`.
    Approved,
    /// `changes`, with minor findings only: the gate passes.
    Suggested,
    /// `changes` with blocker or major findings: the gate fails.
    Requested {
        /// How many blocker findings.
        blockers: usize,
        /// How many major findings.
        majors: usize,
    },
    /// No valid verdict, even when asked again, and why.
    NoVerdict(String),
}

impl GateOutcome {
    /// Whether the gate judged its tree. One that was not run, or could not
    /// run, says nothing about the tree: the failure is omk's or the
    /// machine's, never a verdict on the change it was to judge.
    pub fn judged(&self) -> bool {
        !matches!(self, GateOutcome::NotRun(_) | GateOutcome::CouldNotRun(_))
    }
}

const REVIEWER_WROTE: &str = "the reviewer changed the tree it reviewed";

impl std::fmt::Display for GateOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateOutcome::Ran(exit) => write!(f, "{exit}"),
            GateOutcome::Reviewed(ReviewOutcome::Approved) => f.write_str("approved"),
            GateOutcome::Reviewed(ReviewOutcome::Suggested) => {
                f.write_str("changes suggested (minor)")
            }
            GateOutcome::Reviewed(ReviewOutcome::Requested { blockers, majors }) => {
                write!(f, "changes requested: {blockers} blocker, {majors} major")
            }
            GateOutcome::Reviewed(ReviewOutcome::NoVerdict(why)) => write!(f, "no verdict: {why}"),
            GateOutcome::NotRun(why) => write!(f, "not run: {why}"),
            GateOutcome::CouldNotRun(why) => write!(f, "could not run: {why}"),
            GateOutcome::ReviewerWrote => f.write_str(REVIEWER_WROTE),
            GateOutcome::Other(words) => f.write_str(words),
        }
    }
}

impl From<GateOutcome> for String {
    fn from(outcome: GateOutcome) -> String {
        outcome.to_string()
    }
}

impl From<String> for GateOutcome {
    /// Reads the words [`Display`](std::fmt::Display) writes; anything else
    /// is kept as it is.
    fn from(words: String) -> GateOutcome {
        let number = |s: &str| s.parse::<i32>().ok();
        let ran = |exit| GateOutcome::Ran(exit);
        if let Some(code) = words.strip_prefix("exit ").and_then(number) {
            return ran(Exit::Code(code));
        }
        if let Some(signal) = words.strip_prefix("killed by signal ").and_then(number) {
            return ran(Exit::Signal(signal));
        }
        let requested = words
            .strip_prefix("changes requested: ")
            .and_then(|rest| rest.strip_suffix(" major"))
            .and_then(|rest| rest.split_once(" blocker, "))
            .and_then(|(b, m)| Some((b.parse().ok()?, m.parse().ok()?)));
        if let Some((blockers, majors)) = requested {
            return GateOutcome::Reviewed(ReviewOutcome::Requested { blockers, majors });
        }
        let with = |prefix: &str| words.strip_prefix(prefix).map(str::to_string);
        if let Some(why) = with("no verdict: ") {
            return GateOutcome::Reviewed(ReviewOutcome::NoVerdict(why));
        }
        if let Some(why) = with("not run: ") {
            return GateOutcome::NotRun(why);
        }
        if let Some(why) = with("could not run: ") {
            return GateOutcome::CouldNotRun(why);
        }
        match words.as_str() {
            "timed out" => ran(Exit::TimedOut),
            "cancelled" => ran(Exit::Cancelled),
            "approved" => GateOutcome::Reviewed(ReviewOutcome::Approved),
            "changes suggested (minor)" => GateOutcome::Reviewed(ReviewOutcome::Suggested),
            REVIEWER_WROTE => GateOutcome::ReviewerWrote,
            _ => GateOutcome::Other(words),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_from_the_words_it_is_recorded_as() {
        let all = [
            GateOutcome::Ran(Exit::Code(0)),
            GateOutcome::Ran(Exit::Code(-2)),
            GateOutcome::Ran(Exit::Signal(9)),
            GateOutcome::Ran(Exit::TimedOut),
            GateOutcome::Ran(Exit::Cancelled),
            GateOutcome::Reviewed(ReviewOutcome::Approved),
            GateOutcome::Reviewed(ReviewOutcome::Suggested),
            GateOutcome::Reviewed(ReviewOutcome::Requested {
                blockers: 1,
                majors: 2,
            }),
            GateOutcome::Reviewed(ReviewOutcome::NoVerdict("no block".into())),
            GateOutcome::NotRun("the checkout holds tree x".into()),
            GateOutcome::CouldNotRun("omk's gate job panicked: boom".into()),
            GateOutcome::ReviewerWrote,
            GateOutcome::Other("something older".into()),
        ];
        for outcome in all {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{outcome}\""));
            assert_eq!(serde_json::from_str::<GateOutcome>(&json).unwrap(), outcome);
        }
    }
}
