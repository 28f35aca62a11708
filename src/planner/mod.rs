//! From a goal to N slices.
//!
//! Two ways: [`shard`] splits the paths matching a glob into N balanced
//! shards with no agent at all; [`plan_with_agent`] asks the agent, in a
//! read-only scratch worktree of the base, for a plan in the contract's
//! format, validates it against the real repository, asks once more with the
//! errors when it is wrong, and makes the write scopes of slices that may run
//! at the same time disjoint by serializing them.

pub mod context;

use std::collections::{BTreeMap, BTreeSet};

use globset::GlobBuilder;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::{self, policy::Policy, AgentSpec, Task};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::{Plan, SliceSpec, WriteScope};
use crate::report::Reporter;
use crate::store::Store;
pub use context::RepoContext;

/// How often the agent is asked for a plan.
const ASKS: u32 = 2;

/// The last JSON object in `text` that has a `slices` array.
pub fn extract_plan(text: &str) -> Option<Value> {
    crate::planner::last_json_object(text, |v| v.get("slices").is_some_and(Value::is_array))
}

/// Problems with write scopes that name nothing real: a pattern must match a
/// tracked path, or name a new file in a directory that exists.
pub fn check_scopes(plan: &Plan, ctx: &RepoContext) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, s) in plan.slices.iter().enumerate() {
        for pattern in &s.write_scope {
            let Ok(scope) = WriteScope::new(std::slice::from_ref(pattern)) else {
                continue;
            };
            let matches = ctx.files.iter().any(|(p, _)| scope.contains(p));
            let literal = !pattern.contains(['*', '?', '[', '{']);
            let parent = pattern
                .trim_end_matches('/')
                .rsplit_once('/')
                .map_or("", |(d, _)| d);
            let names_new_file = literal && ctx.has_dir(parent);
            if !(matches || names_new_file) {
                errors.push(format!(
                    "slices[{i}] (`{}`).write_scope: `{pattern}` matches no tracked file and names no new file in an existing directory",
                    s.id
                ));
            }
        }
    }
    errors
}

/// Makes slices that may run at the same time write disjoint paths: when two
/// such slices' scopes overlap (a tracked path both match, or a new file one
/// names that the other's scope covers), the later one in the plan waits for
/// the earlier. Returns a note per dependency added.
pub fn serialize_overlaps(plan: &mut Plan, ctx: &RepoContext) -> Vec<String> {
    let scopes: Vec<WriteScope> = plan
        .slices
        .iter()
        .map(|s| WriteScope::new(&s.write_scope).unwrap_or_else(|_| WriteScope::empty()))
        .collect();
    let mut notes = Vec::new();
    for j in 0..plan.slices.len() {
        for i in 0..j {
            if ordered(plan, i, j) || ordered(plan, j, i) {
                continue;
            }
            let shared = ctx
                .files
                .iter()
                .map(|(p, _)| p.as_str())
                .chain(
                    plan.slices[i]
                        .write_scope
                        .iter()
                        .chain(&plan.slices[j].write_scope)
                        .map(String::as_str),
                )
                .find(|p| scopes[i].contains(p) && scopes[j].contains(p))
                .map(str::to_string);
            if let Some(path) = shared {
                let (a, b) = (plan.slices[i].id.clone(), plan.slices[j].id.clone());
                plan.slices[j].depends_on.push(a.clone());
                notes.push(format!(
                    "serialized `{b}` after `{a}`: their write scopes overlap (e.g. {path})"
                ));
            }
        }
    }
    notes
}

/// Whether slice `later` (transitively) depends on slice `earlier`.
fn ordered(plan: &Plan, earlier: usize, later: usize) -> bool {
    let target = &plan.slices[earlier].id;
    let mut stack = vec![later];
    let mut seen = BTreeSet::new();
    while let Some(k) = stack.pop() {
        for d in &plan.slices[k].depends_on {
            if d == target {
                return true;
            }
            if let Some(i) = plan.slices.iter().position(|s| &s.id == d) {
                if seen.insert(i) {
                    stack.push(i);
                }
            }
        }
    }
    false
}

/// Splits the paths matching `glob` into at most `n` shards balanced by file
/// count, each a slice with the goal as its task and its paths as its scope.
///
/// A match is the shortest path prefix the glob matches: `crates/*` makes
/// each crate one unit, `src/**/*.py` each file. Units are dealt largest
/// first to the lightest shard (ties by name), so the split is the same for
/// the same tree.
pub fn shard(goal: &str, glob: &str, n: usize, ctx: &RepoContext) -> Result<Plan> {
    let pattern = glob.trim_end_matches('/');
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::Shard {
            glob: glob.to_string(),
            reason: format!("is not a valid glob: {e}"),
        })?
        .compile_matcher();
    let mut units: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for (path, _) in &ctx.files {
        let parts: Vec<&str> = path.split('/').collect();
        let unit = (1..=parts.len())
            .map(|k| parts[..k].join("/"))
            .find(|p| matcher.is_match(p));
        if let Some(u) = unit {
            let is_dir = u.len() < path.len();
            let e = units.entry(u).or_insert((0, is_dir));
            e.0 += 1;
        }
    }
    if units.is_empty() {
        return Err(Error::Shard {
            glob: glob.to_string(),
            reason: "matches no tracked path".into(),
        });
    }
    let shards = n.min(units.len());
    let mut order: Vec<(&String, &(u64, bool))> = units.iter().collect();
    order.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let mut bins: Vec<(u64, Vec<(&String, bool)>)> = vec![(0, Vec::new()); shards];
    for (unit, (files, is_dir)) in order {
        let lightest = (0..shards).min_by_key(|&k| (bins[k].0, k)).unwrap_or(0);
        bins[lightest].0 += files;
        bins[lightest].1.push((unit, *is_dir));
    }
    let width = shards.to_string().len();
    let slices = bins
        .into_iter()
        .enumerate()
        .map(|(k, (files, mut members))| {
            members.sort();
            let scope: Vec<String> = members
                .iter()
                .map(|(u, is_dir)| {
                    if *is_dir {
                        format!("{u}/**")
                    } else {
                        (*u).clone()
                    }
                })
                .collect();
            let names: Vec<&str> = members.iter().map(|(u, _)| u.as_str()).collect();
            SliceSpec {
                id: format!("shard-{:0width$}", k + 1),
                title: format!("{goal} — shard {} of {shards} ({files} files)", k + 1),
                prompt: format!(
                    "{goal}\n\nApply it to exactly these paths, and nothing else: {}",
                    names.join(", ")
                ),
                write_scope: scope,
                depends_on: vec![],
                gates: None,
            }
        })
        .collect();
    Ok(Plan {
        goal: Some(goal.to_string()),
        slices,
        notes: vec![format!(
            "sharded by `{glob}`: {} units into {shards} shards by file count",
            units.len()
        )],
    })
}

/// The prompt asking an agent for a plan.
pub fn planning_prompt(goal: &str, n: usize, context: &str, errors: &[String]) -> String {
    let mut p = format!(
        "You are planning, not coding: omk will split this goal into at most {n} slices that separate agents \
         carry out in parallel, each in its own worktree.\n\nGoal: {goal}\n\nRepository:\n{context}\n\
         Answer with a plan as one JSON object in your final message, in this format:\n\
         {{\"slices\": [{{\"id\": \"core\", \"title\": \"…\", \"prompt\": \"the precise task\", \
         \"write_scope\": [\"crates/core/**\"], \"depends_on\": []}}], \"notes\": [\"…\"]}}\n\
         Rules: ids match [a-z0-9][a-z0-9-]* and are unique; write_scope lists repository-relative globs \
         that match existing files or name new files in existing directories; slices without a dependency \
         between them must not share paths; depends_on must form a DAG; at most {n} slices, fewer when the \
         goal does not split further (say why in notes). Do not change any file: this step is read-only.\n"
    );
    if !errors.is_empty() {
        p += "\nYour previous plan was refused:\n";
        for e in errors {
            p += &format!("- {e}\n");
        }
        p += "Answer again with a corrected plan.\n";
    }
    p
}

/// Everything planning with an agent needs.
pub struct Planning<'a> {
    pub repo: &'a Repo,
    pub store: &'a Store,
    pub agent: &'a AgentSpec,
    pub goal: &'a str,
    pub slices: usize,
    pub base: &'a str,
    pub gates: Vec<String>,
    pub per_slice_gates: Vec<String>,
    pub timeout: std::time::Duration,
    pub inactivity: std::time::Duration,
    /// Extra environment variables the agent may see (`[sandbox] env`).
    pub env_extra: Vec<String>,
    /// Extra directories the agent may write (`[sandbox] writable`).
    pub writable: Vec<String>,
    /// Paths the agent may read that the sandbox hides (`[sandbox] readable`).
    pub readable: Vec<String>,
    /// The agents' network.
    pub network: crate::sandbox::NetworkSettings,
}

/// Asks the agent for a plan, at most twice, and returns a valid one.
pub async fn plan_with_agent(p: Planning<'_>, reporter: &Reporter) -> Result<Plan> {
    let ctx = RepoContext::load(p.repo, p.base)?;
    let summary = ctx.summary(&p.gates);
    let id = format!("plan-{:08x}", rand::random::<u32>());
    let dir = p.store.planning_dir().join(&id);
    let worktree = dir.join("worktree");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    // Held while planning runs: `goal clean` and `doctor` leave a running
    // planner's worktree alone.
    let _running = crate::store::GoalDir {
        id: id.clone(),
        dir: dir.clone(),
    }
    .lock()?;
    {
        let (repo, wt, base) = (p.repo.clone(), worktree.clone(), p.base.to_string());
        crate::actors::blocking(move || repo.add_worktree(&wt, None, &base, true)).await?;
    }
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    // Read-only, as the reviewer: the scratch worktree is where it runs
    // and reads, not where it may write (an `exec:` planner asks for no
    // tool, so the policy alone would not stop it).
    let confinement = crate::sandbox::Confinement::new(
        std::iter::once(tmp.clone())
            .chain(crate::sandbox::writable_dirs(
                p.agent.is_kimi(),
                &p.writable,
            ))
            .collect(),
    )
    .reading(crate::sandbox::readable_dirs(&p.readable))
    .working_in(worktree.clone())
    .on(p.agent.network(&p.network));
    let mut errors: Vec<String> = Vec::new();
    let mut result = Err(Error::Plan {
        file: "the planning agent's answer".into(),
        errors: vec!["no answer".into()],
    });
    for ask in 1..=ASKS {
        reporter.notice(&format!(
            "planning: asking {} for at most {} slices (ask {ask} of {ASKS})",
            p.agent, p.slices
        ));
        let task = Task {
            goal_id: id.clone(),
            slice_id: "planner".into(),
            prompt: planning_prompt(p.goal, p.slices, &summary, &errors),
            worktree: worktree.clone(),
            write_scope: vec![],
            attempt: ask,
            log: dir.join(format!("ask-{ask}.log")),
            timeout: p.timeout,
            inactivity: p.inactivity,
            policy: Policy::read_only(&worktree),
            answer: Some(dir.join(format!("ask-{ask}.answer"))),
            planning: true,
            inherit: agent::allowed_env(&p.env_extra),
            confinement: confinement.clone(),
            tmp: tmp.clone(),
            resume_session: None,
            feedback: None,
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        // Whatever happens, the worktree is removed below.
        let report = match agent::run(p.agent, &task, tx, &CancellationToken::new()).await {
            Ok(report) => report,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        errors = match (
            report.ok(),
            report.message.as_deref().and_then(extract_plan),
        ) {
            (false, _) => vec![format!(
                "the planning agent failed: {}; log: {}",
                report.exit,
                task.log.display()
            )],
            (true, None) => vec!["the answer has no JSON object with a `slices` array".into()],
            (true, Some(value)) => match serde_json::from_value::<Plan>(value) {
                Err(e) => vec![format!("the plan does not fit the format: {e}")],
                Ok(mut plan) => {
                    let mut errs = plan.validate(Some(p.slices), &p.per_slice_gates);
                    errs.extend(plan.refuse_agent_choices());
                    if errs.is_empty() {
                        errs = check_scopes(&plan, &ctx);
                    }
                    if errs.is_empty() {
                        let notes = serialize_overlaps(&mut plan, &ctx);
                        plan.notes.extend(notes);
                        plan.goal.get_or_insert_with(|| p.goal.to_string());
                        result = Ok(plan);
                        break;
                    }
                    errs
                }
            },
        };
        result = Err(Error::Plan {
            file: format!("the planning agent's answer (logs in {})", dir.display()),
            errors: errors.clone(),
        });
        if report.ok() {
            continue;
        }
        break;
    }
    let (repo, wt) = (p.repo.clone(), worktree.clone());
    let _ = crate::actors::blocking(move || repo.remove_worktree(&wt)).await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The last JSON object in `text` (an agent's answer, prose around it)
/// that `wanted` accepts: how omk reads a plan or a review's verdict.
pub fn last_json_object(
    text: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let starts: Vec<usize> = text.match_indices('{').map(|(i, _)| i).collect();
    starts.into_iter().rev().find_map(|i| {
        let mut stream =
            serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(v)) if wanted(&v) => Some(v),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(files: &[&str]) -> RepoContext {
        RepoContext {
            files: files.iter().map(|f| (f.to_string(), 10)).collect(),
        }
    }

    fn plan(value: Value) -> Plan {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_last_plan_object_is_taken() {
        let text = r#"Thinking… {"draft": true} Here: {"slices":[{"id":"a","prompt":"x","write_scope":["a/**"]}]} and
        finally {"slices":[{"id":"b","prompt":"y","write_scope":["b/**"]}],"notes":["n"]} done."#;
        assert_eq!(extract_plan(text).unwrap()["slices"][0]["id"], "b");
        assert!(extract_plan("no json {here").is_none());
    }

    #[test]
    fn scopes_must_name_real_or_new_paths() {
        let c = ctx(&["src/a.rs", "src/b.rs", "README.md"]);
        let p = plan(serde_json::json!({"slices":[
            {"id":"ok","prompt":"x","write_scope":["src/**","src/new.rs","NEW.md"]},
            {"id":"bad","prompt":"x","write_scope":["lib/**","nowhere/new.rs"]}]}));
        let errors = check_scopes(&p, &c);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`lib/**`") && errors[1].contains("`nowhere/new.rs`"));
    }

    #[test]
    fn overlapping_parallel_slices_are_serialized() {
        let c = ctx(&["src/a.rs", "src/b.rs", "docs/x.md"]);
        let mut p = plan(serde_json::json!({"slices":[
            {"id":"one","prompt":"x","write_scope":["src/a.rs"]},
            {"id":"two","prompt":"x","write_scope":["src/**"]},
            {"id":"three","prompt":"x","write_scope":["docs/**"]},
            {"id":"four","prompt":"x","write_scope":["src/b.rs"],"depends_on":["two"]}]}));
        let notes = serialize_overlaps(&mut p, &c);
        assert_eq!(p.slices[1].depends_on, vec!["one"]);
        assert!(p.slices[2].depends_on.is_empty());
        assert_eq!(
            p.slices[3].depends_on,
            vec!["two"],
            "already ordered through `two`"
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("`two` after `one`") && notes[0].contains("src/a.rs"));
        assert!(p.validate(None, &[]).is_empty());
    }

    #[test]
    fn shards_are_balanced_and_deterministic() {
        let mut files = Vec::new();
        for i in 0..50 {
            for f in 0..(1 + i % 5) {
                files.push(format!("crates/c{i:02}/f{f}.rs"));
            }
        }
        files.push("README.md".into());
        files.sort();
        let c = RepoContext {
            files: files.iter().map(|f| (f.clone(), 1)).collect(),
        };
        let a = shard("migrate", "crates/*", 8, &c).unwrap();
        assert_eq!(a.slices.len(), 8);
        let counts: Vec<usize> = a
            .slices
            .iter()
            .map(|s| {
                c.files
                    .iter()
                    .filter(|(p, _)| WriteScope::new(&s.write_scope).unwrap().contains(p))
                    .count()
            })
            .collect();
        let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert!(max - min <= 1 || (max - min) * 10 <= max, "{counts:?}");
        assert_eq!(
            counts.iter().sum::<usize>(),
            files.len() - 1,
            "every crate file exactly once"
        );
        assert_eq!(a, shard("migrate", "crates/*", 8, &c).unwrap());
        assert!(shard("m", "nothing/*", 2, &c).is_err());
    }
}
