//! The plan: which slices a goal is split into, and how they depend on each other.
//!
//! A plan is read from JSON or TOML (see `docs/formats.md`) and validated as a
//! whole before anything runs; every problem found is reported at once, each
//! naming the slice and field at fault.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod scope;
#[cfg(test)]
mod tests;

use scope::check_pattern;
pub use scope::{cone, scope_warnings, WriteScope};

/// The branch suffix reserved for the integration branch; no slice may use it.
pub use crate::git::conventions::INTEGRATION;

/// The fields a plan and a slice may have.
const PLAN_FIELDS: &[&str] = &["goal", "slices", "notes"];
const SLICE_FIELDS: &[&str] = &[
    "id",
    "title",
    "prompt",
    "write_scope",
    "depends_on",
    "gates",
];

/// Removes the fields a plan may not have, each named as an error.
fn drop_unknown_fields(value: &mut serde_json::Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut drop =
        |object: &mut serde_json::Map<String, serde_json::Value>, known: &[&str], at: &str| {
            let unknown: Vec<String> = object
                .keys()
                .filter(|k| !known.contains(&k.as_str()))
                .cloned()
                .collect();
            for key in unknown {
                object.remove(&key);
                errors.push(format!(
                    "{at}{key}: unknown field; the known ones are {}",
                    known.join(", ")
                ));
            }
        };
    let Some(plan) = value.as_object_mut() else {
        return errors;
    };
    drop(plan, PLAN_FIELDS, "");
    if let Some(slices) = plan.get_mut("slices").and_then(|s| s.as_array_mut()) {
        for (i, slice) in slices.iter_mut().enumerate() {
            if let Some(slice) = slice.as_object_mut() {
                let id = slice
                    .get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                drop(slice, SLICE_FIELDS, &format!("slices[{i}] (`{id}`)."));
            }
        }
    }
    errors
}

/// A goal split into slices.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The goal the plan was made for, if the plan file names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// The slices, in the order the plan lists them.
    pub slices: Vec<SliceSpec>,
    /// Free-form remarks (why fewer slices, which scopes were serialized, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One unit of work, run by one agent in one worktree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SliceSpec {
    /// `[a-z0-9][a-z0-9-]*`, unique within the plan.
    pub id: String,
    /// A short human title.
    #[serde(default)]
    pub title: String,
    /// The task given to the agent.
    pub prompt: String,
    /// Repository-relative glob patterns the slice's commit may touch.
    #[serde(default)]
    pub write_scope: Vec<String>,
    /// Slices that must be merged before this one starts.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Names of the per-slice gates to run; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<String>>,
}

impl Plan {
    /// Reads a plan from `path`: TOML for `.toml`, otherwise JSON.
    pub fn load(path: &Path) -> Result<Plan> {
        match Plan::load_all(path)? {
            (plan, errors) if errors.is_empty() => Ok(plan),
            (_, errors) => Err(Error::Plan {
                file: path.display().to_string(),
                errors,
            }),
        }
    }

    /// Reads a plan, with every unknown field it has as an error of its
    /// own, so that [`Plan::validate`] can report the rest with them. Fails
    /// only when no plan can be read at all.
    pub fn load_all(path: &Path) -> Result<(Plan, Vec<String>)> {
        let file = path.display().to_string();
        let fail = |e: String| Error::Plan {
            file: file.clone(),
            errors: vec![e.trim().to_string()],
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the file: {e}")))?;
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let mut value: serde_json::Value = if is_toml {
            toml::from_str(&text).map_err(|e: toml::de::Error| fail(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?
        };
        let errors = drop_unknown_fields(&mut value);
        let plan = serde_json::from_value::<Plan>(value).map_err(|e| Error::Plan {
            file: file.clone(),
            errors: errors.iter().cloned().chain([e.to_string()]).collect(),
        })?;
        Ok((plan, errors))
    }

    /// Checks the plan as a whole and returns every problem found.
    ///
    /// `max_slices` is `--slices`; `gate_names` are the per-slice gates that exist.
    pub fn validate(&self, max_slices: Option<usize>, gate_names: &[String]) -> Vec<String> {
        let mut errors = Vec::new();
        if self.slices.is_empty() {
            errors.push("`slices` is empty; a plan needs at least one slice".to_string());
        }
        if let Some(max) = max_slices {
            if self.slices.len() > max {
                errors.push(format!(
                    "the plan has {} slices but at most {max} were asked for; ask for more or drop slices",
                    self.slices.len()
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, s) in self.slices.iter().enumerate() {
            let at = format!("slices[{i}] (`{}`)", s.id);
            if let Err(e) = check_slice_id(&s.id) {
                errors.push(format!("{at}.id: {e}"));
            }
            if !seen.insert(s.id.as_str()) {
                errors.push(format!("{at}.id: duplicate id; slice ids must be unique"));
            }
            if s.prompt.trim().is_empty() {
                errors.push(format!("{at}.prompt: empty; say what the agent should do"));
            }
            if s.write_scope.is_empty() {
                errors.push(format!(
                    "{at}.write_scope: empty; list the paths it may change (\"**\" for all)"
                ));
            }
            for pattern in &s.write_scope {
                if let Err(e) = check_pattern(pattern) {
                    errors.push(format!("{at}.write_scope: {e}"));
                }
            }
            if let Some(gates) = &s.gates {
                for g in gates {
                    if !gate_names.contains(g) {
                        errors.push(format!(
                            "{at}.gates: no per-slice gate named `{g}` (known: {})",
                            if gate_names.is_empty() {
                                "none".to_string()
                            } else {
                                gate_names.join(", ")
                            }
                        ));
                    }
                }
            }
        }
        let ids: HashSet<&str> = self.slices.iter().map(|s| s.id.as_str()).collect();
        for (i, s) in self.slices.iter().enumerate() {
            for dep in &s.depends_on {
                if dep == &s.id {
                    errors.push(format!(
                        "slices[{i}] (`{}`).depends_on: depends on itself",
                        s.id
                    ));
                } else if !ids.contains(dep.as_str()) {
                    errors.push(format!(
                        "slices[{i}] (`{}`).depends_on: unknown slice id `{dep}`",
                        s.id
                    ));
                }
            }
        }
        // Unknown and self dependencies are reported above; a cycle among
        // the rest is its own error.
        if let Err(cycle) = self.order_positions() {
            errors.push(format!(
                "depends_on: dependency cycle among {}; the dependencies must form a DAG",
                cycle.join(", ")
            ));
        }
        errors
    }

    /// What is wrong with a plan a planning agent wrote beyond what
    /// [`Plan::validate`] finds: it may not choose which gates run (a gate
    /// it leaves out, such as a security review, would not judge its work).
    pub fn refuse_agent_choices(&self) -> Vec<String> {
        self.slices
            .iter()
            .enumerate()
            .filter(|(_, s)| s.gates.is_some())
            .map(|(i, s)| {
                format!(
                    "slices[{i}] (`{}`).gates: a planning agent does not choose which gates run; leave `gates` out (every configured gate judges every slice)",
                    s.id
                )
            })
            .collect()
    }

    /// The slice ids in dependency order, ties broken by plan order.
    ///
    /// Fails with the ids left on a cycle.
    pub fn order(&self) -> Result<Vec<String>, Vec<String>> {
        let order = self.order_positions()?;
        Ok(order
            .into_iter()
            .map(|i| self.slices[i].id.clone())
            .collect())
    }

    /// [`Plan::order`] as the slices' positions in the plan.
    pub fn order_positions(&self) -> Result<Vec<usize>, Vec<String>> {
        // Kahn's algorithm over an index of dependents; the ready slice that
        // comes first in the plan goes first. O((slices + edges) log slices).
        let position: HashMap<&str, usize> = self
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.slices.len()];
        let mut indegree: Vec<usize> = vec![0; self.slices.len()];
        // Dependencies on unknown slices or on the slice itself are not
        // edges here (validation names them).
        for (i, s) in self.slices.iter().enumerate() {
            for d in &s.depends_on {
                if let Some(&j) = position.get(d.as_str()).filter(|&&j| j != i) {
                    indegree[i] += 1;
                    dependents[j].push(i);
                }
            }
        }
        let mut ready: BTreeSet<usize> = (0..self.slices.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.slices.len());
        while let Some(next) = ready.pop_first() {
            order.push(next);
            for &i in &dependents[next] {
                indegree[i] -= 1;
                if indegree[i] == 0 {
                    ready.insert(i);
                }
            }
        }
        match order.len() == self.slices.len() {
            true => Ok(order),
            false => Err((0..self.slices.len())
                .filter(|&i| indegree[i] > 0)
                .map(|i| self.slices[i].id.clone())
                .collect()),
        }
    }

    /// The slice with this id.
    pub fn slice(&self, id: &str) -> Option<&SliceSpec> {
        self.slices.iter().find(|s| s.id == id)
    }
}

/// Checks a slice id against `[a-z0-9][a-z0-9-]*` and the reserved names.
pub fn check_slice_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "`{id}` is not a valid id; use lowercase letters, digits and '-', starting with a letter or digit"
        ));
    }
    if id == INTEGRATION {
        return Err(format!("`{id}` is reserved for the integration branch"));
    }
    if id == crate::git::conventions::SQUASH {
        return Err(format!(
            "`{id}` is reserved for the squashed delivery's branch"
        ));
    }
    Ok(())
}
