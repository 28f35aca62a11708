//! `omk mcp`: omk as tools of the agent a person already runs, over MCP
//! (stdio, the official `rmcp` crate), for one repository.
//!
//! Each tool is the `omk` command it names, run as a child of the server
//! with `-C <repository>` and `--json`: the same checks, the same messages
//! (every problem at once) and the same exit codes as the command line. A
//! command that fails is the tool's error, never the server's: it keeps
//! serving. `goal_run` starts the goal detached (`goal run --detach`), so a
//! goal outlives the client and is an ordinary goal.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, Meta, ProgressNotificationParam,
    ServerCapabilities, ServerInfo,
};
use rmcp::{tool, tool_handler, tool_router, Peer, RoleServer, ServerHandler, ServiceExt};
use tokio::io::AsyncBufReadExt;

mod params;

pub use params::*;

use crate::error::{Error, Result};

/// Serves the tools for the repository at `dir` on stdin and stdout
/// until the client closes them.
pub async fn serve(dir: &Path) -> Result<()> {
    let repo = crate::git::Repo::discover(dir)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("finding omk's own program".to_string(), e))?;
    let tools = Tools::new(repo.root.clone(), exe);
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Supervisor(format!("MCP: could not start serving: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::Supervisor(format!("MCP: serving ended: {e}")))?;
    Ok(())
}

/// The configuration an MCP client needs to start this server for `dir`
/// (`"mcpServers"`, as the Kimi CLI, Kimi Code and Claude Code read it).
pub fn client_config(exe: &Path, dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "mcpServers": {
            "omk": {
                "command": exe.display().to_string(),
                "args": ["mcp", "-C", dir.display().to_string()],
            }
        }
    })
}

/// The server: the repository it serves and the `omk` it runs.
#[derive(Clone)]
pub struct Tools {
    root: PathBuf,
    exe: PathBuf,
    tool_router: ToolRouter<Tools>,
}

/// What a command said.
struct Said {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Said {
    /// Its output as the tool's result; an error when it failed.
    fn result(self) -> CallToolResult {
        match self.code {
            0 => CallToolResult::success(vec![ContentBlock::text(self.stdout)]),
            code => failed(format!(
                "{}{}(exit {code})",
                self.stderr.trim_end().to_string() + "\n",
                match self.stdout.trim() {
                    "" => String::new(),
                    out => format!("{out}\n"),
                }
            )),
        }
    }
}

/// A tool error saying `text`.
fn failed(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

#[tool_router]
impl Tools {
    fn new(root: PathBuf, exe: PathBuf) -> Tools {
        Tools {
            root,
            exe,
            tool_router: Tools::tool_router(),
        }
    }

    /// Runs `omk -C <repository> <args>` and collects what it said.
    async fn omk(&self, args: &[String]) -> Said {
        let out = tokio::process::Command::new(&self.exe)
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        match out {
            Ok(out) => Said {
                code: out.status.code().unwrap_or(1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => Said {
                code: 1,
                stdout: String::new(),
                stderr: format!("omk could not run {}: {e}", self.exe.display()),
            },
        }
    }

    /// `path`, which must lie inside the repository, as an absolute path.
    fn inside(&self, path: &str, what: &str) -> std::result::Result<PathBuf, String> {
        let given = Path::new(path);
        let joined = match given.is_absolute() {
            true => given.to_path_buf(),
            false => self.root.join(given),
        };
        // A file to be written need not exist yet: its folder must.
        let (folder, name) = match joined.canonicalize() {
            Ok(full) => (full, None),
            Err(_) => match (joined.parent(), joined.file_name()) {
                (Some(parent), Some(name)) => (
                    parent
                        .canonicalize()
                        .map_err(|e| format!("{what} `{path}`: {e}"))?,
                    Some(name.to_owned()),
                ),
                _ => return Err(format!("{what} `{path}` is not a file path")),
            },
        };
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        if !folder.starts_with(&root) {
            return Err(format!(
                "{what} `{path}` is outside the repository {}; give a path inside it",
                root.display()
            ));
        }
        Ok(match name {
            Some(name) => folder.join(name),
            None => folder,
        })
    }

    #[tool(
        description = "Plan a goal without running it: the planning agent (read-only) splits GOAL into at most SLICES slices, each with a prompt, a write scope (globs) and dependencies, and the plan is checked against the repository. Costs one agent run. Returns the plan as JSON, to review or edit and then pass to goal_run as `plan`. Bad input returns every problem at once."
    )]
    async fn goal_plan(&self, Parameters(p): Parameters<PlanParams>) -> CallToolResult {
        let mut args = vec![
            "goal".to_string(),
            "plan".into(),
            p.goal,
            "--slices".into(),
            p.slices.to_string(),
        ];
        args.extend(
            p.agent
                .map(|a| vec!["--agent".into(), a])
                .unwrap_or_default(),
        );
        args.extend(p.base.map(|b| vec!["--base".into(), b]).unwrap_or_default());
        if let Some(out) = p.out {
            match self.inside(&out, "out") {
                Ok(path) => args.extend(["--out".into(), path.display().to_string()]),
                Err(e) => return failed(e),
            }
        }
        self.omk(&args).await.result()
    }

    #[tool(
        description = "Run a goal: each slice gets its own git worktree and its own agent process (this starts up to `concurrency` agents at once, one per slice, and each may retry up to `max_attempts` times — it costs N agent runs or more), every result is verified by the repository's gates, accepted slices are merged into the branch omk/<goal_id>/integration, and a proof is written. Give `plan` (a plan object as goal_plan returns it, or `plan_file`, a path inside the repository), or `slices` to let the agent plan first. Returns {goal_id} at once, the goal running in the background (it survives this client); follow it with goal_status or goal_events. With `wait: true` it instead returns the goal's status when it ends, sending progress notifications meanwhile."
    )]
    async fn goal_run(
        &self,
        Parameters(p): Parameters<RunParams>,
        meta: Meta,
        client: Peer<RoleServer>,
    ) -> CallToolResult {
        let args = match self.run_args(&p) {
            Ok(args) => args,
            Err(e) => return failed(e),
        };
        let said = self.omk(&args).await;
        if said.code != 0 || !p.wait.unwrap_or(false) {
            return said.result();
        }
        let id = serde_json::from_str::<serde_json::Value>(&said.stdout)
            .ok()
            .and_then(|v| v["goal_id"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.wait_for(&id, meta, client).await
    }

    #[tool(
        description = "A goal's status: overall status (running, ready, not_ready, blocked, needs_budget, cancelled, failed), and per slice its status, attempts, commit, gates and why it failed. `goal_id` defaults to the latest goal; a unique prefix is enough. Free: reads the goal's log."
    )]
    async fn goal_status(&self, Parameters(p): Parameters<GoalParams>) -> CallToolResult {
        self.omk(&[
            "goal".into(),
            "status".into(),
            id_or_latest(p.goal_id),
            "--json".into(),
        ])
        .await
        .result()
    }

    #[tool(
        description = "A goal's events after sequence number `after` (default 0: all), as JSON Lines, one event per line with its `seq`, `ts` and `kind`; pass the last `seq` you saw to get only what is new. Free: reads the goal's log."
    )]
    async fn goal_events(&self, Parameters(p): Parameters<EventsParams>) -> CallToolResult {
        let said = self
            .omk(&[
                "goal".into(),
                "replay".into(),
                id_or_latest(p.goal_id),
                "--json".into(),
            ])
            .await;
        if said.code != 0 {
            return said.result();
        }
        let after = p.after.unwrap_or(0);
        let lines: Vec<&str> = said
            .stdout
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["seq"].as_u64())
                    .is_some_and(|seq| seq > after)
            })
            .collect();
        CallToolResult::success(vec![ContentBlock::text(lines.join("\n"))])
    }

    #[tool(
        description = "Logs of a goal: with `failed: true`, every failed step (gates, refused commits, conflicts, failed agents) with the excerpt where it fails; else the logs of `slice` (its agent's and gates', `attempt` to pick one). Free."
    )]
    async fn goal_logs(&self, Parameters(p): Parameters<LogsParams>) -> CallToolResult {
        let mut args = vec!["goal".to_string(), "logs".into(), id_or_latest(p.goal_id)];
        args.extend(p.slice);
        if p.failed.unwrap_or(false) {
            args.push("--failed".into());
        }
        if let Some(n) = p.attempt {
            args.extend(["--attempt".into(), n.to_string()]);
        }
        self.omk(&args).await.result()
    }

    #[tool(
        description = "The diff of a slice's work against where it started, or of the whole goal with slice `integration`; `stat: true` for the changed files only. Free."
    )]
    async fn goal_diff(&self, Parameters(p): Parameters<DiffParams>) -> CallToolResult {
        let mut args = vec![
            "goal".to_string(),
            "diff".into(),
            id_or_latest(p.goal_id),
            p.slice,
        ];
        if p.stat.unwrap_or(false) {
            args.push("--stat".into());
        }
        if let Some(n) = p.attempt {
            args.extend(["--attempt".into(), n.to_string()]);
        }
        self.omk(&args).await.result()
    }

    #[tool(
        description = "A goal's proof: what was asked, every slice's attempts and gate results on the trees they ran on, the merges, the integration gates, the delivery, and the log's hash. JSON by default; `markdown: true` for the Markdown a pull request shows. Free."
    )]
    async fn goal_proof(&self, Parameters(p): Parameters<ProofParams>) -> CallToolResult {
        let form = match p.markdown.unwrap_or(false) {
            true => "--markdown",
            false => "--json",
        };
        self.omk(&[
            "goal".into(),
            "proof".into(),
            id_or_latest(p.goal_id),
            form.into(),
        ])
        .await
        .result()
    }

    #[tool(
        description = "Cancel a running goal: its agents are stopped, committed work is kept, and the goal ends `cancelled` (goal_retry goes on later). Waits up to a minute for it to stop."
    )]
    async fn goal_cancel(&self, Parameters(p): Parameters<GoalIdParams>) -> CallToolResult {
        self.omk(&["goal".into(), "cancel".into(), p.goal_id])
            .await
            .result()
    }

    #[tool(
        description = "Give an ended goal's slices that did not merge fresh attempts (`slices`, default all of them; `max_attempts` more each), and run the goal on to its end in the background. Costs an agent run per attempt. Returns at once; follow with goal_status."
    )]
    async fn goal_retry(&self, Parameters(p): Parameters<RetryParams>) -> CallToolResult {
        let mut args = vec!["goal".to_string(), "retry".into(), p.goal_id.clone()];
        args.extend(p.slices.unwrap_or_default());
        if let Some(n) = p.max_attempts {
            args.extend(["--max-attempts".into(), n.to_string()]);
        }
        args.push("--no-progress".into());
        self.in_background(&p.goal_id, &args).await
    }

    #[tool(
        description = "Deliver a ready goal: `to` is branch (leave it on omk/<goal_id>/integration), ff (fast-forward the base branch), push (push the branch and the proof), pr (push, then open or update a GitHub pull request) or land (pr, then merge it once its checks pass; this waits). `squash: true` delivers one commit."
    )]
    async fn goal_deliver(&self, Parameters(p): Parameters<DeliverParams>) -> CallToolResult {
        let mut args = vec![
            "goal".to_string(),
            "deliver".into(),
            p.goal_id,
            "--to".into(),
            p.to,
            "--json".into(),
        ];
        if p.squash.unwrap_or(false) {
            args.push("--squash".into());
        }
        self.omk(&args).await.result()
    }

    #[tool(
        description = "Every goal of this repository, oldest first: id, status, goal, slices, how many merged, when it started. Free."
    )]
    async fn goal_list(&self) -> CallToolResult {
        self.omk(&["goal".into(), "list".into(), "--json".into()])
            .await
            .result()
    }
}

impl Tools {
    /// `goal run … --detach --json` for what `p` asks.
    fn run_args(&self, p: &RunParams) -> std::result::Result<Vec<String>, String> {
        let mut args = vec!["goal".to_string(), "run".into(), p.goal.clone()];
        let mut problems = Vec::new();
        match (&p.plan, &p.plan_file) {
            (Some(_), Some(_)) => problems.push("give `plan` or `plan_file`, not both".to_string()),
            (Some(plan), None) => match self.inline_plan(plan) {
                Ok(path) => args.extend(["--plan".into(), path.display().to_string()]),
                Err(e) => problems.push(e),
            },
            (None, Some(file)) => match self.inside(file, "plan_file") {
                Ok(path) => args.extend(["--plan".into(), path.display().to_string()]),
                Err(e) => problems.push(e),
            },
            (None, None) => {}
        }
        let flags: [(&str, Option<String>); 6] = [
            ("--slices", p.slices.map(|n| n.to_string())),
            ("--agent", p.agent.clone()),
            ("--base", p.base.clone()),
            ("--concurrency", p.concurrency.map(|n| n.to_string())),
            ("--max-attempts", p.max_attempts.map(|n| n.to_string())),
            ("--deliver", p.deliver.clone()),
        ];
        for (flag, value) in flags {
            if let Some(value) = value {
                args.extend([flag.to_string(), value]);
            }
        }
        if p.allow_no_gates.unwrap_or(false) {
            args.push("--allow-no-gates".into());
        }
        args.extend(["--detach".into(), "--json".into()]);
        match problems.is_empty() {
            true => Ok(args),
            false => Err(problems.join("\n")),
        }
    }

    /// Writes a plan given inline to a file of omk's own (not in the
    /// repository), for `--plan`.
    fn inline_plan(&self, plan: &serde_json::Value) -> std::result::Result<PathBuf, String> {
        let store = crate::git::Repo::discover(&self.root)
            .and_then(|repo| crate::store::Store::for_repo(&repo))
            .map_err(|e| e.to_string())?;
        let path = store
            .root()
            .join("mcp")
            .join(format!("plan-{}.json", crate::store::new_goal_id()));
        let text = serde_json::to_vec_pretty(plan).map_err(|e| e.to_string())?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        crate::files::write_atomic(&path, &text).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Follows goal `id` to its end (`goal watch --json`), a progress
    /// notification per event when the client asked for them, then says
    /// its status.
    async fn wait_for(&self, id: &str, meta: Meta, client: Peer<RoleServer>) -> CallToolResult {
        let token = meta.get_progress_token();
        let watch = tokio::process::Command::new(&self.exe)
            .arg("-C")
            .arg(&self.root)
            .args(["goal", "watch", id, "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(e) => return failed(format!("following goal {id}: {e}")),
        };
        if let Some(stdout) = watch.stdout.take() {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let (Some(token), Ok(event)) = (
                    token.clone(),
                    serde_json::from_str::<crate::store::events::Event>(&line),
                ) else {
                    continue;
                };
                let said = crate::report::describe(&event.body);
                let _ = client
                    .notify_progress(
                        ProgressNotificationParam::new(token, event.seq as f64)
                            .with_message(crate::shown::visible_lines(&said)),
                    )
                    .await;
            }
        }
        let _ = watch.wait().await;
        self.omk(&[
            "goal".into(),
            "status".into(),
            id.to_string(),
            "--json".into(),
        ])
        .await
        .result()
    }

    /// Starts `omk <args>` for goal `id` in a session of its own, its
    /// output to the store's detached log; returns what it said if it ends
    /// within a moment (refused, or nothing to do), else that it runs.
    async fn in_background(&self, id: &str, args: &[String]) -> CallToolResult {
        use std::os::unix::process::CommandExt;
        let log = crate::git::Repo::discover(&self.root)
            .and_then(|repo| crate::store::Store::for_repo(&repo))
            .map(|store| store.detached_log(&format!("{id}-{}", crate::store::new_goal_id())));
        let log = match log {
            Ok(log) => log,
            Err(e) => return failed(e.to_string()),
        };
        let file = log
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::File::create(&log));
        let (out, err) = match file.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok(pair) => pair,
            Err(e) => return failed(format!("creating {}: {e}", log.display())),
        };
        let mut command = std::process::Command::new(&self.exe);
        command
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: setsid is async-signal-safe; the child outlives the client.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return failed(format!("starting omk: {e}")),
        };
        for _ in 0..40 {
            if let Ok(Some(status)) = child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return match status.code() {
                    Some(0) => CallToolResult::success(vec![ContentBlock::text(said)]),
                    code => failed(format!("{said}(exit {})", code.unwrap_or(1))),
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        CallToolResult::success(vec![ContentBlock::text(format!(
            "goal {id} runs in the background; goal_status follows it (its controller's output: {})",
            log.display()
        ))])
    }
}

/// The goal asked for, or the latest.
fn id_or_latest(id: Option<String>) -> String {
    id.unwrap_or_else(|| "latest".into())
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("omk", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "omk runs one engineering goal as parallel slices in the git repository {}: each slice in its own worktree with its own agent, verified by gates, merged by a deterministic integrator, with a proof. Plan with goal_plan, start with goal_run (it returns a goal_id at once), poll goal_status until the status is no longer `running`, then read goal_proof.",
                self.root.display()
            ))
    }
}
