//! omk with the real Kimi CLIs — the Python kimi-cli (ACP, wire and print
//! modes) and the maintained Kimi Code CLI (ACP) — driven offline against a
//! scripted LLM server. The CLIs are installed from the package registries on
//! first use (scripts/install-kimi-tools.sh).

use crate::support::kimi::{self, Product};
use crate::support::llm::{self, LlmServer, Reply};
use crate::support::{gate_toml, slice, slice_of, Fixture};
use serde_json::{json, Value};

/// Runs a goal with `agent` as `product` against `server`; returns (exit code, proof, stderr).
fn run(
    f: &Fixture,
    product: Product,
    server: &LlmServer,
    agent: &str,
    plan: Value,
    extra: &[&str],
) -> (i32, Value, String) {
    let plan = f.plan(plan);
    let env = kimi::env(product, &server.base_url, f.tmp.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut args = vec![
        "goal",
        "run",
        "kimi goal",
        "--plan",
        plan.to_str().unwrap(),
        "--agent",
        agent,
        "--json",
        "--no-progress",
        // The gate asks for a file a slice writes: the base fails it by design.
        "--no-base-check",
    ];
    args.extend_from_slice(extra);
    let out = f.omk_env(&args, &env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let proof = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no proof ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), proof, stderr)
}

fn three_slices() -> Value {
    json!({ "slices": [slice("alpha", &["alpha.txt"]), slice("beta", &["beta.txt"]), slice("gamma", &["gamma.txt"])] })
}

fn repo() -> Fixture {
    Fixture::new(&[(
        "omk.toml",
        &gate_toml(
            "check",
            "test -s alpha.txt || test -s beta.txt || test -s gamma.txt",
            "both",
        ),
    )])
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    crate::support::files_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

/// Checks a ready 3-slice goal whose files the agent wrote through its own
/// tool, and that the API key the agent had reached none of omk's files.
fn assert_written(f: &Fixture, proof: &Value) {
    let leaks = files_containing(&f.home, kimi::API_KEY);
    assert!(leaks.is_empty(), "the API key leaked into {leaks:?}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let branch = proof["integration"]["branch"].as_str().unwrap();
    for id in ["alpha", "beta", "gamma"] {
        assert_eq!(slice_of(proof, id)["status"], "merged");
        assert_eq!(
            f.show(branch, &format!("{id}.txt")),
            format!("hello from {id}")
        );
        assert!(slice_of(proof, id)["agent"]["session_id"].is_string());
    }
}

#[test]
fn python_cli_over_acp_writes_merges_and_is_gated() {
    let f = repo();
    let server = LlmServer::start(llm::write_slice_file);
    let (code, proof, stderr) = run(&f, Product::Python, &server, "kimi", three_slices(), &[]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    // The Python ACP server reports no token usage: null, not 0.
    assert!(slice_of(&proof, "alpha")["agent"]["tokens_in"].is_null());
}

/// Each slice's token counts in the proof are exactly what the server sent for it.
fn assert_usage_is_what_the_server_sent(proof: &Value, server: &LlmServer) {
    for id in ["alpha", "beta", "gamma"] {
        let agent = &slice_of(proof, id)["agent"];
        let (tin, tout) = served_tokens(server, id);
        assert!(tin > 0, "the server answered nothing for {id}");
        assert_eq!(agent["tokens_in"], tin, "{agent}");
        assert_eq!(agent["tokens_out"], tout, "{agent}");
    }
}

/// Tokens the server sent for one slice's requests: (prompt, completion).
fn served_tokens(server: &LlmServer, id: &str) -> (u64, u64) {
    server
        .served()
        .iter()
        .filter(|s| s.status == 200 && llm::slice_of(&s.body).as_deref() == Some(id))
        .fold((0, 0), |(i, o), s| {
            (i + s.prompt_tokens, o + s.completion_tokens)
        })
}

#[test]
fn kimi_code_over_acp_writes_merges_and_reports_usage() {
    let f = repo();
    let server = LlmServer::start(llm::write_slice_file);
    let (code, proof, stderr) = run(&f, Product::Code, &server, "kimi", three_slices(), &[]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    for id in ["alpha", "beta", "gamma"] {
        let agent = &slice_of(&proof, id)["agent"];
        // Kimi Code reports its context size in usage updates; no output count.
        assert!(
            agent["tokens_in"].as_u64().is_some_and(|t| t > 0),
            "{agent}\n{stderr}"
        );
        assert!(agent["tokens_out"].is_null(), "{agent}");
    }
}

#[test]
fn python_cli_over_wire_reports_the_token_usage_of_every_step() {
    let f = repo();
    let server = LlmServer::start(llm::write_slice_file);
    let (code, proof, stderr) = run(
        &f,
        Product::Python,
        &server,
        "kimi-wire",
        three_slices(),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    assert_usage_is_what_the_server_sent(&proof, &server);
}

#[test]
fn python_cli_in_print_mode_reports_usage_from_its_session_log() {
    let f = repo();
    let server = LlmServer::start(llm::write_slice_file);
    let (code, proof, stderr) = run(
        &f,
        Product::Python,
        &server,
        "kimi-print",
        three_slices(),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    assert_usage_is_what_the_server_sent(&proof, &server);
}

/// First asks to write outside the worktree, then writes its own file.
fn escape_then_comply(
    outside: std::path::PathBuf,
) -> impl Fn(&Value, usize) -> Reply + Send + Sync {
    move |body, _| {
        let tools_done = body["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] == "tool").count());
        let slice = llm::slice_of(body).unwrap_or_default();
        match tools_done {
            0 => Reply::Tool {
                name: llm::write_tool(body),
                arguments: json!({"path": outside.join(format!("{slice}-escaped.txt")).display().to_string(), "content": "escaped\n"}),
            },
            1 => Reply::Tool {
                name: llm::write_tool(body),
                arguments: json!({"path": format!("{slice}.txt"), "content": format!("hello from {slice}\n")}),
            },
            _ => Reply::Text("Done.".into()),
        }
    }
}

fn denied_outside_write(agent: &str) {
    let f = repo();
    let outside = f.repo.clone(); // the user's own checkout
    let before = f.checkout_snapshot();
    let server = LlmServer::start(escape_then_comply(outside.clone()));
    let (code, proof, stderr) = run(&f, Product::Python, &server, agent, three_slices(), &[]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    for id in ["alpha", "beta", "gamma"] {
        assert!(
            !outside.join(format!("{id}-escaped.txt")).exists(),
            "{id} wrote outside its worktree"
        );
    }
    assert_eq!(f.checkout_snapshot(), before);
    let replay = f.omk(&["goal", "replay", "--json"]);
    let denials: Vec<Value> = String::from_utf8_lossy(&replay.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["kind"] == "agent_update"
                && e["update"]["type"] == "approval"
                && e["update"]["decision"]["allow"] == false
        })
        .collect();
    assert_eq!(denials.len(), 3, "one denial per slice: {denials:#?}");
    for d in &denials {
        assert_eq!(d["update"]["decision"]["rule"], "outside-worktree");
        assert!(d["update"]["request"]["paths"][0]
            .as_str()
            .unwrap()
            .ends_with("-escaped.txt"));
    }
}

#[test]
fn a_write_outside_the_worktree_is_denied_over_wire() {
    denied_outside_write("kimi-wire");
}

#[test]
fn a_write_outside_the_worktree_is_denied_over_acp() {
    denied_outside_write("kimi");
}

#[test]
fn a_stalled_agent_is_stopped_at_its_inactivity_timeout() {
    let f = repo();
    let server = LlmServer::start(|body, n| {
        if llm::slice_of(body).as_deref() == Some("beta") {
            Reply::Delay(
                std::time::Duration::from_secs(120),
                Box::new(Reply::Text("too late".into())),
            )
        } else {
            llm::write_slice_file(body, n)
        }
    });
    let (code, proof, _) = run(
        &f,
        Product::Python,
        &server,
        "kimi-wire",
        three_slices(),
        // Long enough for a Python CLI to start on a loaded 2-core machine.
        &["--inactivity-timeout", "30s"],
    );
    assert_eq!(code, 1);
    let beta = slice_of(&proof, "beta");
    assert_eq!(beta["status"], "failed");
    assert_eq!(beta["agent"]["exit"], "inactive");
    // Stopped after its 30 s of silence, before the server's 120 s answer.
    let ran = beta["agent"]["duration_ms"].as_u64().unwrap();
    assert!((30_000..120_000).contains(&ran), "ran {ran} ms");
    assert!(
        beta["reason"].as_str().unwrap().contains("inactive"),
        "{beta}"
    );
    let alpha = slice_of(&proof, "alpha");
    assert_eq!(alpha["status"], "merged", "{alpha}");
}

fn events(f: &Fixture) -> Vec<Value> {
    let out = f.omk(&["goal", "replay", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_token_budget_that_runs_out_ends_needs_budget_with_finished_work_merged() {
    let f = repo();
    let server = LlmServer::start(llm::write_slice_file);
    // One slice uses about 250 tokens here: the first finishes, the second crosses 300.
    let (code, proof, stderr) = run(
        &f,
        Product::Python,
        &server,
        "kimi-wire",
        three_slices(),
        &["--budget-tokens", "300", "--concurrency", "1"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "needs_budget", "{proof:#}");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("token budget of 300"),
        "{}",
        proof["reason"]
    );
    let merged: Vec<&str> = ["alpha", "beta", "gamma"]
        .into_iter()
        .filter(|id| slice_of(&proof, id)["status"] == "merged")
        .collect();
    assert_eq!(merged, vec!["alpha"], "{proof:#}");
    // Nothing lost: the finished slice is on the integration branch.
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(f.show(branch, "alpha.txt"), "hello from alpha");
    assert_eq!(slice_of(&proof, "beta")["status"], "cancelled");
    assert_eq!(
        slice_of(&proof, "gamma")["attempts"],
        0,
        "no slice starts after the budget is spent"
    );
    assert!(
        proof["usage"]["tokens_in"].as_u64().unwrap()
            + proof["usage"]["tokens_out"].as_u64().unwrap()
            >= 300
    );
    let log = events(&f);
    let spent = log
        .iter()
        .position(|e| e["kind"] == "budget_exhausted")
        .expect("a budget_exhausted event");
    assert!(!log[spent..].iter().any(|e| e["kind"] == "slice_started"));

    // Resumed as it is, the budget is still spent: nothing starts.
    let env = kimi::env(Product::Python, &server.base_url, f.tmp.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let again = f.omk_env(&["goal", "resume", "--json", "--no-progress"], &env);
    let proof: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(proof["status"], "needs_budget", "{proof:#}");
    let log = events(&f);
    let resumed = log
        .iter()
        .rposition(|e| e["kind"] == "goal_resumed")
        .unwrap();
    assert!(!log[resumed..].iter().any(|e| e["kind"] == "slice_started"));

    // Raised, the rest of the work runs on to the end.
    let raised = f.omk_env(
        &[
            "goal",
            "resume",
            "--budget-tokens",
            "100000",
            "--json",
            "--no-progress",
        ],
        &env,
    );
    let proof: Value = serde_json::from_slice(&raised.stdout).unwrap();
    assert_eq!(
        proof["status"],
        "ready",
        "{proof:#}\n{}",
        String::from_utf8_lossy(&raised.stderr)
    );
    for id in ["alpha", "beta", "gamma"] {
        assert_eq!(
            f.show(branch, &format!("{id}.txt")),
            format!("hello from {id}")
        );
    }
    let log = events(&f);
    let last = log.iter().rfind(|e| e["kind"] == "goal_resumed").unwrap();
    assert_eq!(last["raised"]["budget_tokens"], 100000);
}

#[test]
fn a_rate_limit_storm_is_retried_with_backoff_and_the_goal_completes() {
    let f = repo();
    // Longer than the CLI's own retries: every agent gives up (exit 75) at least once.
    let server = LlmServer::start(|body, n| {
        if n < 30 {
            Reply::Status(429)
        } else {
            llm::write_slice_file(body, n)
        }
    });
    let (code, proof, stderr) = run(
        &f,
        Product::Python,
        &server,
        "kimi-print",
        three_slices(),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_written(&f, &proof);
    let retries: Vec<Value> = events(&f)
        .into_iter()
        .filter(|e| e["kind"] == "agent_retry")
        .collect();
    assert!(!retries.is_empty(), "omk retried nothing:\n{stderr}");
    assert!(retries
        .iter()
        .all(|r| r["reason"] == "exit 75" && r["delay_ms"].as_u64().unwrap() >= 750));
    assert!(server.served().iter().filter(|s| s.status == 429).count() == 30);
}

#[test]
fn doctor_says_which_backends_each_cli_supports() {
    let f = repo();
    let server_url = "http://127.0.0.1:9/v1";
    let doctor = |product| {
        let env = kimi::env(product, server_url, f.tmp.path());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = f.omk_env(&["doctor"], &env);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let python = doctor(Product::Python);
    assert!(
        python.contains("kimi, version 1.51.0")
            && python.contains("kimi-wire and kimi-print all work"),
        "{python}"
    );
    let code = doctor(Product::Code);
    assert!(
        code.contains("(2.1.0)") && code.contains("kimi-wire and kimi-print need the Python CLI"),
        "{code}"
    );
    let missing = f.omk_env(&["doctor"], &[("OMK_KIMI_BIN", "/nonexistent/kimi")]);
    let missing = String::from_utf8_lossy(&missing.stdout);
    assert!(
        missing.contains("NOT FOUND") && missing.contains("npm install -g @moonshot-ai/kimi-code"),
        "{missing}"
    );
}

#[test]
fn the_real_cli_plans_the_goal_then_runs_the_slices() {
    let f = repo();
    let plan = json!({"slices": [
        {"id": "alpha", "prompt": "write alpha.txt", "write_scope": ["alpha.txt"]},
        {"id": "beta", "prompt": "write beta.txt", "write_scope": ["beta.txt"]}
    ], "notes": ["two files"]});
    let answer = format!("I looked at the repository. Here is the plan:\n{plan}");
    let server = LlmServer::start(move |body, n| {
        if llm::message_text(body).contains("You are planning") {
            Reply::Text(answer.clone())
        } else {
            llm::write_slice_file(body, n)
        }
    });
    let env = kimi::env(Product::Python, &server.base_url, f.tmp.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = f.omk_env(
        &[
            "goal",
            "run",
            "write two files",
            "--slices",
            "3",
            "--json",
            "--no-progress",
            "--no-base-check",
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["agent"], "kimi");
    assert_eq!(proof["slices"].as_array().unwrap().len(), 2);
    let branch = proof["integration"]["branch"].as_str().unwrap();
    for id in ["alpha", "beta"] {
        assert_eq!(slice_of(&proof, id)["status"], "merged");
        assert_eq!(
            f.show(branch, &format!("{id}.txt")),
            format!("hello from {id}")
        );
    }
}

/// Kills omk while `agent` waits on the LLM, resumes, and checks the agent
/// continued its own session.
fn interrupted_agent_resumes_its_session(product: Product, agent: &str) {
    let f = repo();
    // The first request hangs, so omk is killed while the agent waits on it.
    let server = LlmServer::start(|body, n| {
        if n == 0 {
            Reply::Delay(
                std::time::Duration::from_secs(30),
                Box::new(Reply::Text("late".into())),
            )
        } else {
            llm::write_slice_file(body, n)
        }
    });
    let env = kimi::env(product, &server.base_url, f.tmp.path());
    let plan = f.plan(json!({ "slices": [slice("alpha", &["alpha.txt"])] }));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(&f.repo)
        .args([
            "goal",
            "run",
            "g",
            "--plan",
            plan.to_str().unwrap(),
            "--agent",
            agent,
            "--no-progress",
            "--no-base-check",
        ])
        .env("OMK_HOME", &f.home)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the agent's session to be recorded and its first request to arrive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let session = loop {
        let found = events(&f).into_iter().find_map(|e| {
            (e["kind"] == "agent_update" && e["update"]["type"] == "session")
                .then(|| e["update"]["id"].as_str().unwrap().to_string())
        });
        if let (Some(id), true) = (found, server.arrived() > 0) {
            break id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = f.omk_env(&["goal", "resume", "--json", "--no-progress"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alpha = slice_of(&proof, "alpha");
    assert_eq!(alpha["status"], "merged");
    assert_eq!(
        alpha["attempts"], 1,
        "the interrupted attempt ran again under its own number"
    );
    assert_eq!(
        alpha["agent"]["session_id"],
        session.as_str(),
        "the agent resumed its session"
    );
    let restarted = events(&f)
        .into_iter()
        .rfind(|e| e["kind"] == "slice_started")
        .unwrap();
    assert_eq!(restarted["resume_session"], session.as_str());
    // The CLI really continued that session: every request carries it (the
    // first, still delayed, is not recorded yet).
    let later: Vec<String> = server
        .served()
        .iter()
        .filter_map(|s| s.body["prompt_cache_key"].as_str().map(str::to_string))
        .collect();
    assert!(
        !later.is_empty() && later.iter().all(|k| k == &session),
        "{later:?} vs {session}"
    );
    assert_eq!(
        f.show(
            proof["integration"]["branch"].as_str().unwrap(),
            "alpha.txt"
        ),
        "hello from alpha"
    );
}

#[test]
fn an_interrupted_wire_agent_resumes_its_own_session() {
    interrupted_agent_resumes_its_session(Product::Python, "kimi-wire");
}

#[test]
fn an_interrupted_acp_agent_loads_its_own_session() {
    interrupted_agent_resumes_its_session(Product::Code, "kimi");
}

#[test]
fn the_real_cli_reviews_a_slice_read_only_and_its_verdict_and_tokens_are_recorded() {
    let f = Fixture::new(&[(
        "omk.toml",
        &format!(
            "{}\n[[gate]]\nname = \"review\"\nkind = \"review\"\nscope = \"slice\"\ninstructions = \"Files say hello.\"\n",
            gate_toml("check", "test -s alpha.txt", "both")
        ),
    )]);
    // The reviewer first tries to overwrite the slice's file, then, told
    // the write was refused, gives its verdict.
    let server = LlmServer::start(|body, n| {
        let text = llm::message_text(body);
        if !text.contains("You are reviewing a change") {
            return llm::write_slice_file(body, n);
        }
        assert!(
            text.contains("Files say hello.") && text.contains("+hello from alpha"),
            "the reviewer was not shown the instructions and the diff:\n{text}"
        );
        if llm::after_tool(body) {
            Reply::Text(
                "The file is right.\n```omk-verdict\n{\"verdict\": \"approve\", \"findings\": [{\"path\": \"alpha.txt\", \"line\": 1, \"severity\": \"minor\", \"message\": \"could say more\"}]}\n```"
                    .into(),
            )
        } else {
            Reply::Tool {
                name: llm::write_tool(body),
                arguments: json!({"path": "alpha.txt", "content": "pwned\n"}),
            }
        }
    });
    let (code, proof, stderr) = run(
        &f,
        Product::Python,
        &server,
        "kimi-wire",
        json!({ "slices": [slice("alpha", &["alpha.txt"])] }),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let review = slice_of(&proof, "alpha")["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "review")
        .unwrap()
        .clone();
    assert_eq!(review["passed"], true, "{review:#}");
    assert_eq!(review["review"]["verdict"], "approve");
    assert_eq!(review["review"]["findings"][0]["message"], "could say more");
    assert_eq!(review["review"]["agent"]["spec"], "kimi-wire");
    let review_tokens = review["review"]["agent"]["tokens_in"].as_u64().unwrap();
    assert!(review_tokens > 0, "{review:#}");
    let agent_tokens = slice_of(&proof, "alpha")["agent"]["tokens_in"]
        .as_u64()
        .unwrap();
    assert_eq!(
        proof["usage"]["tokens_in"].as_u64().unwrap(),
        agent_tokens + review_tokens,
        "the review's tokens count in the goal's usage"
    );
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(f.show(branch, "alpha.txt"), "hello from alpha");
}

/// First runs a shell command that tries another service on the host's
/// loopback, directly and through the proxy, then writes its own file.
fn probe_then_write(other: u16) -> impl Fn(&Value, usize) -> Reply + Send + Sync {
    move |body, _| {
        let tools_done = body["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] == "tool").count());
        let names: Vec<String> = body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(String::from))
            .collect();
        let shell = names
            .iter()
            .find(|n| n.contains("Shell") || n.contains("Bash"))
            .cloned()
            .unwrap_or_else(|| format!("no shell tool among {names:?}"));
        let slice = llm::slice_of(body).unwrap_or_default();
        match tools_done {
            0 => Reply::Tool {
                name: shell,
                arguments: json!({"command": format!(
                    "curl -s -m 3 http://127.0.0.1:{other}/; curl -s -m 3 --noproxy '' -x \"$HTTP_PROXY\" http://127.0.0.1:{other}/; echo probed"
                )}),
            },
            1 => Reply::Tool {
                name: llm::write_tool(body),
                arguments: json!({"path": format!("{slice}.txt"), "content": format!("hello from {slice}\n")}),
            },
            _ => Reply::Text("Done.".into()),
        }
    }
}

/// The real CLI reaches its model through omk's proxy, with only the
/// model's `host:port` allowed: another port of the same host is refused.
fn reaches_only_its_model(product: Product) {
    let f = repo();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    other.set_nonblocking(true).unwrap();
    let server = LlmServer::start(probe_then_write(other_port));
    let plan = json!({ "slices": [slice("alpha", &["alpha.txt"])] });
    let (code, proof, stderr) = run(&f, product, &server, "kimi", plan, &[]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert!(
        other.accept().is_err(),
        "the agent reached another port of the host's loopback"
    );
    let network = &slice_of(&proof, "alpha")["agent"]["network"];
    let model = server
        .base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(network["policy"], "proxied", "{network:#}");
    assert_eq!(network["allowed"], json!([model]), "{network:#}");
    let refused: Vec<String> = network["refused"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{}:{}", r["host"].as_str().unwrap(), r["port"]))
        .collect();
    assert_eq!(refused, [format!("127.0.0.1:{other_port}")], "{network:#}");
}

#[test]
fn the_python_cli_reaches_only_its_model_through_the_proxy() {
    reaches_only_its_model(Product::Python);
}

#[test]
fn kimi_code_reaches_only_its_model_through_the_proxy() {
    reaches_only_its_model(Product::Code);
}
