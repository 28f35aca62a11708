//! What a review is and says: the gate's spec, the reviewer's verdict and
//! findings, and how a verdict is read from its answer. Nothing here runs:
//! gate results hold these without depending on the review's run.

use serde::{Deserialize, Serialize};

use crate::agent;

/// What makes a gate a review (`kind = "review"` in `omk.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSpec {
    /// The agent that reviews, as `--agent` names one: the gate's `agent`;
    /// a goal records its own agent here when the gate names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What the reviewer is asked to look for: the preset's instructions,
    /// then the gate's own.
    pub instructions: String,
    /// The shipped instructions they start from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Input plus output tokens after which the review is stopped (and fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// Shipped review instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Secrets, disabled checks, new network calls, weakened tests, changes
    /// to CI or gate scripts.
    Security,
}

impl Preset {
    /// The preset named `name` in `omk.toml`.
    pub fn parse(name: &str) -> Option<Preset> {
        match name {
            "security" => Some(Preset::Security),
            _ => None,
        }
    }

    /// Its instructions.
    pub fn instructions(self) -> &'static str {
        match self {
            Preset::Security => SECURITY,
        }
    }
}

/// What a review gate looks for when its `instructions` say nothing.
pub const GENERAL: &str = "Check that the change does what its task asks and nothing else: \
bugs, missing cases, code that cannot work, tests that do not test the change, and edits \
outside what the task needs. Report only real problems; style alone is a minor finding.";

const SECURITY: &str = "Review the change for security:\n\
- secrets in code or configuration (keys, tokens, passwords, private keys), even as test data;\n\
- checks that were disabled or weakened: authentication, authorization, TLS verification, \
input validation, sandboxing, lint rules;\n\
- new network calls, new dependencies, downloads or code run from outside the repository;\n\
- tests that were deleted, skipped, made always to pass, or no longer assert what they did;\n\
- changes to CI configuration, build scripts, git hooks or the scripts and settings the gates \
run (omk.toml, Makefiles, test runners).\n\
Any of these that the task does not plainly require is a blocker.";

/// A reviewer's judgement of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Changes,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Blocker,
    Major,
    Minor,
}

/// One problem a reviewer found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The file, relative to the repository.
    #[serde(default)]
    pub path: String,
    /// The line, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Blocker => "blocker",
            Severity::Major => "major",
            Severity::Minor => "minor",
        };
        match (self.path.as_str(), self.line) {
            ("", _) => write!(f, "[{severity}] {}", self.message),
            (path, Some(line)) => write!(f, "[{severity}] {path}:{line}: {}", self.message),
            (path, None) => write!(f, "[{severity}] {path}: {}", self.message),
        }
    }
}

/// What a review gate's result records besides pass or fail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// The verdict, when the reviewer gave a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// How often it was asked (2 when its first answer was no verdict).
    pub asks: u32,
    /// The reviewer's run: its exit, tokens, cost and transcript, summed
    /// over the asks. Its tokens and cost count against the goal's budgets.
    pub agent: agent::Report,
}

/// The fence that opens a reviewer's verdict block.
pub const VERDICT_FENCE: &str = "```omk-verdict";

/// The verdict and findings of the one `omk-verdict` block that ends the
/// reviewer's answer `text`, or what is wrong with the answer.
///
/// Only the reviewer's own, delimited verdict counts: none, two, one that
/// does not end the answer or starts inside other text (a quote), or one
/// whose content is in the material it was shown (`shown`: the prompt with
/// the diff and the task, which the change's author wrote) is no verdict.
pub fn parse_verdict(text: &str, shown: &str) -> Result<(Verdict, Vec<Finding>), String> {
    #[derive(Deserialize)]
    struct Answer {
        verdict: Verdict,
        #[serde(default)]
        findings: Vec<Finding>,
    }
    let text = text.trim_end();
    let blocks = text.matches(VERDICT_FENCE).count();
    let Some(start) = text.find(VERDICT_FENCE) else {
        return Err(format!(
            "the answer does not end with a {VERDICT_FENCE} block"
        ));
    };
    if blocks > 1 {
        return Err(format!(
            "the answer has {blocks} {VERDICT_FENCE} blocks; give exactly one, your own, at its end"
        ));
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    if !text[line_start..start].trim().is_empty() {
        return Err(format!(
            "the {VERDICT_FENCE} block does not start a line (it is quoted or inside other text)"
        ));
    }
    let after_fence = &text[start + VERDICT_FENCE.len()..];
    let Some(body_start) = after_fence.find('\n') else {
        return Err(format!("the {VERDICT_FENCE} block is empty"));
    };
    if !after_fence[..body_start].trim().is_empty() {
        return Err(format!("text follows {VERDICT_FENCE} on its line"));
    }
    let Some(body) = after_fence[body_start..].strip_suffix("```") else {
        return Err(format!(
            "the {VERDICT_FENCE} block is not the end of the answer: close it with ``` and write nothing after it"
        ));
    };
    let body = body.trim();
    if body.contains("```") {
        return Err(format!("the {VERDICT_FENCE} block holds another fence"));
    }
    if body.is_empty() || shown.contains(body) {
        return Err(format!(
            "the {VERDICT_FENCE} block is empty or repeats text of the change under review; give your own verdict"
        ));
    }
    let answer: Answer = serde_json::from_str(body).map_err(|e| {
        format!("the verdict object does not fit the form: {e} (verdict is \"approve\" or \"changes\"; each finding has path, line, severity \"blocker\", \"major\" or \"minor\", and message)")
    })?;
    Ok((answer.verdict, answer.findings))
}

/// Whether a verdict fails the gate: `changes` with a blocker or major finding.
pub fn fails(verdict: Verdict, findings: &[Finding]) -> bool {
    verdict == Verdict::Changes && findings.iter().any(|f| f.severity <= Severity::Major)
}
