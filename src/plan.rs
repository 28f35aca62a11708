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

fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with('/') {
        return Err(format!(
            "`{pattern}` is absolute; patterns are repository-relative"
        ));
    }
    if pattern.split('/').any(|part| part == "..") {
        return Err(format!("`{pattern}` leaves the repository with `..`"));
    }
    if pattern.starts_with('~') {
        return Err(format!(
            "`{pattern}` names a home directory; patterns are repository-relative"
        ));
    }
    // The repository's own git directory (hooks, config, refs) is nobody's
    // to write, in any case spelling a case-insensitive disk accepts.
    if pattern
        .split('/')
        .any(|part| part.eq_ignore_ascii_case(".git"))
    {
        return Err(format!(
            "`{pattern}` names `.git`, which no slice may write; drop it from the write scope"
        ));
    }
    scope_glob(pattern).map(|_| ())
}

fn scope_glob(pattern: &str) -> Result<Glob, String> {
    // `dir/` means everything below `dir`.
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_string(),
    };
    GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))
}

/// The directories a sparse checkout of a slice with `write_scope` needs,
/// `include` added: `None` when a pattern does not start with a literal
/// directory (`**/*.rs`, `*/x`), which no cone can hold. Files at the top of
/// the repository are in every cone, so `README.md` or `*.md` need nothing.
pub fn cone(write_scope: &[String], include: &[String]) -> Option<Vec<String>> {
    let mut dirs = Vec::new();
    for pattern in write_scope {
        // `dir/` means everything below `dir`.
        let (pattern, below) = match pattern.strip_suffix('/') {
            Some(dir) => (dir, true),
            None => (pattern.as_str(), false),
        };
        let parts: Vec<&str> = pattern.split('/').collect();
        let literal = parts
            .iter()
            .take_while(|p| !p.contains(['*', '?', '[', '{', '\\']))
            .count();
        let dir = match literal {
            // A path: the directory it is in, or itself for `dir/`.
            n if n == parts.len() && below => parts.join("/"),
            n if n == parts.len() => parts[..n - 1].join("/"),
            // A top-level glob that cannot cross `/` (`*.md`).
            0 if parts.len() == 1 && !parts[0].contains("**") => String::new(),
            0 => return None,
            n => parts[..n].join("/"),
        };
        if !dir.is_empty() {
            dirs.push(dir);
        }
    }
    dirs.extend(
        include
            .iter()
            .map(|d| d.trim_end_matches('/').to_string())
            .filter(|d| !d.is_empty()),
    );
    dirs.sort();
    dirs.dedup();
    Some(dirs)
}

/// Warnings for write scopes that match no file at the base (`tracked`)
/// and look like typos: one below a directory that does not exist
/// (`tset/**`), or a file whose name is a slip away from a file beside it
/// (`src/tiem.py` next to `src/item.py`). A new file in an existing
/// directory is what many scopes are for, and is not warned about. Two
/// passes over the files, whatever the number of scopes.
pub fn scope_warnings(plan: &Plan, tracked: &[String]) -> Vec<String> {
    let mut builder = GlobSetBuilder::new();
    let mut owners = Vec::new();
    for s in &plan.slices {
        for pattern in &s.write_scope {
            if let Ok(glob) = scope_glob(pattern) {
                builder.add(glob);
                owners.push((s.id.as_str(), pattern.as_str()));
            }
        }
    }
    let Ok(set) = builder.build() else {
        return Vec::new();
    };
    let mut matched = vec![false; owners.len()];
    let mut dirs = std::collections::HashSet::new();
    for path in tracked {
        for i in set.matches(path.as_str()) {
            matched[i] = true;
        }
        let mut at = path.as_str();
        while let Some((dir, _)) = at.rsplit_once('/') {
            if !dirs.insert(dir) {
                break;
            }
            at = dir;
        }
    }
    // The unmatched scopes that name one file in an existing directory,
    // by directory, to compare with the files there.
    let mut files_in: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    let mut warnings: Vec<(usize, String)> = Vec::new();
    for (i, (slice, pattern)) in owners.iter().enumerate().filter(|(i, _)| !matched[*i]) {
        // The literal directory the pattern starts with.
        let literal = pattern
            .split(['*', '?', '[', '{'])
            .next()
            .unwrap_or_default();
        let dir = literal.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        if !dir.is_empty() && !dirs.contains(dir) {
            warnings.push((i, format!(
                "slice `{slice}`: write scope `{pattern}` matches no file, and `{dir}/` does not exist at the base; the slice can only create it (a typo?)"
            )));
        } else if literal == *pattern && !pattern.ends_with('/') {
            let name = pattern.rsplit_once('/').map_or(*pattern, |(_, n)| n);
            files_in.entry(dir).or_default().push((i, name));
        }
    }
    if !files_in.is_empty() {
        let mut near: HashMap<usize, &str> = HashMap::new();
        for path in tracked {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            for (i, wanted) in files_in.get(dir).into_iter().flatten() {
                if !near.contains_key(i) && is_slip(wanted, name) {
                    near.insert(*i, path);
                }
            }
        }
        for (i, path) in near {
            let (slice, pattern) = owners[i];
            warnings.push((i, format!(
                "slice `{slice}`: write scope `{pattern}` matches no file at the base, but `{path}` is there (a typo?)"
            )));
        }
    }
    warnings.sort();
    warnings.into_iter().map(|(_, w)| w).collect()
}

/// Whether `b` is `a` with a slip of the keyboard: one character added,
/// dropped, changed or two swapped (two such slips in names of eight
/// characters or more).
fn is_slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let allowed = if a.len().min(b.len()) >= 8 { 2 } else { 1 };
    if a == b || a.len().abs_diff(b.len()) > allowed {
        return false;
    }
    // Optimal string alignment distance, over three rows.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()] <= allowed
}

/// A compiled write scope.
#[derive(Debug, Clone)]
pub struct WriteScope(GlobSet);

impl WriteScope {
    /// Compiles validated patterns.
    pub fn new(patterns: &[String]) -> Result<WriteScope, String> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(scope_glob(p)?);
        }
        builder.build().map(WriteScope).map_err(|e| e.to_string())
    }

    /// A scope that allows nothing.
    pub fn empty() -> WriteScope {
        WriteScope(GlobSet::empty())
    }

    /// Whether `path` is inside the scope.
    pub fn contains(&self, path: &str) -> bool {
        self.0.is_match(path)
    }

    /// The paths that fall outside the scope.
    pub fn violations<'a>(&self, paths: &'a [String]) -> Vec<&'a String> {
        paths
            .iter()
            .filter(|p| !self.0.is_match(p.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(id: &str, deps: &[&str]) -> SliceSpec {
        SliceSpec {
            id: id.into(),
            title: String::new(),
            prompt: "do it".into(),
            write_scope: vec!["**".into()],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            gates: None,
        }
    }

    fn plan(slices: Vec<SliceSpec>) -> Plan {
        Plan {
            goal: None,
            slices,
            notes: vec![],
        }
    }

    #[test]
    fn order_follows_dependencies_then_plan_order() {
        let p = plan(vec![
            slice("c", &["b"]),
            slice("a", &[]),
            slice("b", &["a"]),
        ]);
        assert_eq!(p.order().unwrap(), vec!["a", "b", "c"]);
        assert!(p.validate(Some(3), &[]).is_empty());
    }

    #[test]
    fn every_problem_is_named() {
        let mut bad = slice("Bad_Id", &["ghost"]);
        bad.prompt = " ".into();
        bad.write_scope = vec!["/etc/**".into(), "../x".into()];
        let p = plan(vec![bad, slice("a", &[]), slice("a", &[])]);
        let errors = p.validate(Some(2), &[]).join("\n");
        for needle in [
            "at most 2 were asked for",
            "not a valid id",
            "duplicate id",
            "prompt: empty",
            "absolute",
            "`..`",
            "unknown slice id `ghost`",
        ] {
            assert!(errors.contains(needle), "missing {needle:?} in:\n{errors}");
        }
    }

    #[test]
    fn cycles_are_refused() {
        let p = plan(vec![
            slice("a", &["b"]),
            slice("b", &["a"]),
            slice("c", &[]),
        ]);
        let errors = p.validate(None, &[]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("cycle among a, b"), "{errors:?}");
    }

    #[test]
    fn scopes_that_match_no_file_are_warned_about() {
        let mut a = slice("a", &[]);
        a.write_scope = vec!["src/item.py".into(), "src/tiem.py".into(), "tset/**".into()];
        let mut b = slice("b", &[]);
        b.write_scope = vec!["src/".into(), "docs/new.md".into()];
        let plan = Plan {
            slices: vec![a, b],
            ..Plan::default()
        };
        let tracked = vec!["src/item.py".to_string(), "docs/index.md".into()];
        let warnings = scope_warnings(&plan, &tracked);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0]
            .contains("`src/tiem.py` matches no file at the base, but `src/item.py` is there"));
        assert!(warnings[1].contains("`tset/` does not exist"));
        // A new file beside others is no typo.
        assert!(!warnings.iter().any(|w| w.contains("docs/new.md")));
    }

    #[test]
    fn a_slip_is_one_edit_in_a_short_name_and_two_in_a_long_one() {
        assert!(is_slip("tiem.py", "item.py"));
        assert!(is_slip("itm.py", "item.py"));
        assert!(is_slip("configuration.rs", "confgiuraton.rs"));
        assert!(!is_slip("upper.sh", "echo.sh"));
        assert!(!is_slip("a.txt", "a.txt"));
        assert!(!is_slip("test_upper.sh", "test_echo.sh"));
        assert!(!is_slip("ab.rs", "ba.py"));
    }

    #[test]
    fn reserved_and_unknown_gates_are_refused() {
        let mut s = slice("integration", &[]);
        s.gates = Some(vec!["lint".into()]);
        let errors = plan(vec![s]).validate(None, &["test".into()]).join("\n");
        assert!(errors.contains("reserved"));
        assert!(errors.contains("no per-slice gate named `lint` (known: test)"));
    }

    #[test]
    fn scope_matches_below_directories_only() {
        let scope = WriteScope::new(&["src/a/**".into(), "docs/".into(), "*.md".into()]).unwrap();
        let paths: Vec<String> = [
            "src/a/x.rs",
            "src/a/b/y.rs",
            "docs/x/y",
            "README.md",
            "src/b.rs",
            "docs2/x",
            "sub/R.md",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let bad: Vec<&str> = scope
            .violations(&paths)
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(bad, vec!["src/b.rs", "docs2/x", "sub/R.md"]);
    }

    #[test]
    fn toml_and_json_plans_load() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("p.json");
        std::fs::write(
            &json,
            r#"{"slices":[{"id":"a","prompt":"x","write_scope":["**"]}]}"#,
        )
        .unwrap();
        assert_eq!(Plan::load(&json).unwrap().slices[0].id, "a");
        let toml = dir.path().join("p.toml");
        std::fs::write(
            &toml,
            "[[slices]]\nid = \"b\"\nprompt = \"y\"\nwrite_scope = [\"**\"]\n",
        )
        .unwrap();
        assert_eq!(Plan::load(&toml).unwrap().slices[0].id, "b");
        std::fs::write(&json, r#"{"slices":[{"id":"a"}]}"#).unwrap();
        let err = Plan::load(&json).unwrap_err().to_string();
        assert!(err.contains("missing field `prompt`"), "{err}");
    }

    #[test]
    fn a_cone_holds_the_directories_a_scope_names() {
        let cone = |scope: &[&str], include: &[&str]| {
            let s: Vec<String> = scope.iter().map(|p| p.to_string()).collect();
            let i: Vec<String> = include.iter().map(|p| p.to_string()).collect();
            super::cone(&s, &i)
        };
        let dirs = |d: &[&str]| Some(d.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        assert_eq!(cone(&["src/api/**"], &[]), dirs(&["src/api"]));
        assert_eq!(cone(&["src/api/"], &[]), dirs(&["src/api"]));
        assert_eq!(
            cone(&["src/*.rs", "docs/api.md"], &[]),
            dirs(&["docs", "src"])
        );
        assert_eq!(
            cone(&["crates/a/src/**/*.rs"], &["build/"]),
            dirs(&["build", "crates/a/src"])
        );
        // Top-level files are in every cone.
        assert_eq!(cone(&["README.md", "*.toml"], &[]), dirs(&[]));
        // A pattern that can match anywhere fits no cone.
        assert_eq!(cone(&["**"], &[]), None);
        assert_eq!(cone(&["src/**", "**/*.rs"], &[]), None);
        assert_eq!(cone(&["*/mod.rs"], &[]), None);
    }
}
