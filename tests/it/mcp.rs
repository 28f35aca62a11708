//! `omk mcp` driven by real MCP clients: the official Python SDK from PyPI
//! (installed by `scripts/install-mcp-client.sh`, which CI also runs) lists
//! the tools and calls each, bad input included; and the real Kimi CLI,
//! pointed at a scripted model, runs a goal through them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::support::{gate_toml, slice, Fixture};

/// The venv holding the Python MCP SDK.
fn client_python() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/mcp-client");
        let status = Command::new("bash")
            .arg(root.join("scripts/install-mcp-client.sh"))
            .arg(&dir)
            .status()
            .expect("running scripts/install-mcp-client.sh");
        assert!(status.success(), "installing the Python MCP SDK failed");
        dir.join("bin/python")
    })
}

/// Runs `calls` against `omk mcp -C <repo>` with the Python SDK.
fn drive(f: &Fixture, calls: Value) -> Value {
    let file = f.script("calls.json", &calls.to_string());
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/mcp_client.py");
    let out = Command::new(client_python())
        .arg(driver)
        .arg(env!("CARGO_BIN_EXE_omk"))
        .arg(&f.repo)
        .arg(file)
        .env("OMK_HOME", &f.home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the MCP client failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn plan() -> Value {
    json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] })
}

#[test]
fn a_real_mcp_client_lists_every_tool_and_calls_each_and_bad_input_is_an_answer() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let slow = format!(
        "exec:sh {}",
        f.script("slow.sh", "sleep 30; echo late > \"$OMK_SLICE_ID.txt\"\n")
            .display()
    );
    let mut cyclic = plan();
    cyclic["slices"][0]["depends_on"] = json!(["b"]);
    cyclic["slices"][1]["depends_on"] = json!(["a"]);
    let outside = f.tmp.path().join("outside.json");
    std::fs::write(&outside, plan().to_string()).unwrap();
    let said = drive(
        &f,
        json!([
            { "tool": "goal_list" },
            { "tool": "goal_run", "args": { "goal": "g", "plan": plan(), "agent": agent } },
            { "tool": "goal_status", "args": { "goal_id": "$GOAL" }, "until_not": "running" },
            { "tool": "goal_events", "args": { "goal_id": "$GOAL", "after": 3 } },
            { "tool": "goal_logs", "args": { "goal_id": "$GOAL", "slice": "a" } },
            { "tool": "goal_diff", "args": { "goal_id": "$GOAL", "slice": "integration", "stat": true } },
            { "tool": "goal_proof", "args": { "goal_id": "$GOAL" } },
            { "tool": "goal_proof", "args": { "goal_id": "$GOAL", "markdown": true } },
            { "tool": "goal_deliver", "args": { "goal_id": "$GOAL", "to": "branch" } },
            { "tool": "goal_retry", "args": { "goal_id": "$GOAL" } },
            { "tool": "goal_run", "args": { "goal": "g", "plan": plan(), "agent": agent, "wait": true } },
            { "tool": "goal_run", "args": { "goal": "slow", "plan": plan(), "agent": slow } },
            { "tool": "goal_cancel", "args": { "goal_id": "$GOAL" } },
            { "tool": "goal_status", "args": { "goal_id": "$GOAL" } },
            // Bad input: answered as tool errors, and the server goes on.
            { "tool": "goal_status", "args": { "goal_id": "no-such-goal" } },
            { "tool": "goal_run", "args": { "goal": "g", "plan": cyclic, "agent": agent } },
            { "tool": "goal_run", "args": { "goal": "g", "plan_file": outside.to_str().unwrap(), "agent": agent } },
            { "tool": "goal_plan", "args": { "goal": "g", "slices": 0, "agent": agent } },
            { "tool": "goal_list" },
        ]),
    );

    // Every tool, each with a description and an input schema.
    let tools = said["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "goal_cancel",
            "goal_deliver",
            "goal_diff",
            "goal_events",
            "goal_list",
            "goal_logs",
            "goal_plan",
            "goal_proof",
            "goal_retry",
            "goal_run",
            "goal_status"
        ]
    );
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap();
    let run = tool("goal_run");
    assert!(run["description"].as_str().unwrap().contains("agent"));
    assert_eq!(run["schema"]["required"], json!(["goal"]));
    for field in [
        "plan",
        "plan_file",
        "slices",
        "agent",
        "concurrency",
        "wait",
    ] {
        assert!(
            run["schema"]["properties"][field]["description"].is_string(),
            "goal_run.{field} is described: {run:#}"
        );
    }
    assert_eq!(tool("goal_diff")["schema"]["required"], json!(["slice"]));

    let calls = said["calls"].as_array().unwrap();
    let text = |i: usize| calls[i]["text"].as_str().unwrap().to_string();
    let ok = |i: usize| {
        assert_eq!(
            calls[i]["is_error"],
            false,
            "{}: {}",
            calls[i]["tool"],
            text(i)
        );
    };
    for i in 0..14 {
        ok(i);
    }
    assert_eq!(serde_json::from_str::<Value>(&text(0)).unwrap(), json!([]));
    let id = serde_json::from_str::<Value>(&text(1)).unwrap()["goal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let status: Value = serde_json::from_str(&text(2)).unwrap();
    assert_eq!(status["status"], "ready", "{status:#}");
    let seqs: Vec<u64> = text(3)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs.first(), Some(&4), "events after 3");
    assert!(
        text(5).contains("a.txt") && text(5).contains("b.txt"),
        "{}",
        text(5)
    );
    let proof: Value = serde_json::from_str(&text(6)).unwrap();
    assert_eq!(proof["goal_id"], id.as_str());
    assert!(text(7).contains(&id), "markdown proof: {}", text(7));
    // The goal it started is an ordinary one: the command line sees it.
    let listed = String::from_utf8_lossy(&f.omk(&["goal", "list"]).stdout).into_owned();
    assert!(listed.contains(&id), "{listed}");
    // Waiting, it sent progress as the goal went, and ended with its status.
    let waited: Value = serde_json::from_str(&text(10)).unwrap();
    assert_eq!(waited["status"], "ready");
    let progress = calls[10]["progress"].as_array().unwrap();
    assert!(progress.len() > 5, "{progress:?}");
    assert!(
        progress
            .iter()
            .any(|p| p["message"].as_str().unwrap_or_default().contains("merged")),
        "{progress:?}"
    );
    // Both goals built the same tree from the same plan.
    assert_eq!(waited["integration"]["tree"], proof["integration"]["tree"]);

    // A running goal is cancelled.
    let cancelled: Value = serde_json::from_str(&text(13)).unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{}", text(12));

    // Errors are answers, with the command line's words.
    for (i, says) in [
        (14, "no goal `no-such-goal`"),
        (15, "cycle"),
        (16, "outside the repository"),
        (17, "must be at least 1"),
    ] {
        assert_eq!(calls[i]["is_error"], true, "{}", text(i));
        assert!(text(i).contains(says), "{}: {}", calls[i]["tool"], text(i));
    }
    // …and the server still serves.
    ok(18);
    let goals: Value = serde_json::from_str(&text(18)).unwrap();
    assert_eq!(goals.as_array().unwrap().len(), 3, "{goals:#}");
    assert!(
        f.leftover_processes().is_empty(),
        "{:?}",
        f.leftover_processes()
    );
}

#[test]
fn print_config_names_this_omk_and_this_repository() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let out = f.omk(&["mcp", "--print-config"]);
    assert!(out.status.success());
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = &config["mcpServers"]["omk"];
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_omk")).unwrap();
    assert_eq!(
        std::fs::canonicalize(server["command"].as_str().unwrap()).unwrap(),
        exe
    );
    assert_eq!(server["args"][0], "mcp");
    assert_eq!(server["args"][1], "-C");
    assert_eq!(
        std::fs::canonicalize(server["args"][2].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&f.repo).unwrap()
    );
}

/// The last tool result in a request, as text.
fn last_tool_result(body: &Value) -> Option<String> {
    let last = body["messages"].as_array()?.last()?;
    if last["role"] != "tool" {
        return None;
    }
    Some(match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    })
}

/// The tool the model called last, as omk names it.
fn last_call(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .rev()
        .find_map(|m| m["tool_calls"][0]["function"]["name"].as_str())
        .map(|n| {
            ["goal_run", "goal_status", "goal_proof"]
                .into_iter()
                .find(|t| n.ends_with(t))
                .unwrap_or(n)
                .to_string()
        })
        .unwrap_or_default()
}

/// The name the agent offers an MCP tool under (it may prefix it).
fn offered(body: &Value, tool: &str) -> String {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str())
        .find(|n| n.ends_with(tool))
        .unwrap_or(tool)
        .to_string()
}

/// The first `"goal_id": "…"` in `text`.
fn goal_id_in(text: &str) -> Option<String> {
    let at = text.find("\"goal_id\"")?;
    let rest = &text[at + 9..];
    let start = rest.find('"')? + 1;
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_string())
}

#[test]
fn the_real_kimi_cli_runs_a_goal_through_omk_s_mcp_tools() {
    use crate::support::kimi::{self, Product};
    use crate::support::llm::{LlmServer, Reply};

    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let the_plan = plan();
    let (plan_for_model, agent_for_model) = (the_plan.clone(), agent.clone());
    // The model: goal_run with the plan, goal_status until it is no longer
    // running, goal_proof, then a last word.
    let llm = LlmServer::start(move |body, _| {
        let result = last_tool_result(body);
        let tool = |name: &str, arguments: Value| Reply::Tool {
            name: offered(body, name),
            arguments,
        };
        let Some(result) = result else {
            return tool(
                "goal_run",
                json!({ "goal": "write a.txt and b.txt", "plan": plan_for_model, "agent": agent_for_model }),
            );
        };
        let called = last_call(body);
        let id = body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == "tool")
            .find_map(|m| goal_id_in(m["content"].as_str().unwrap_or_default()))
            .unwrap_or_default();
        match called.as_str() {
            "goal_run" => return tool("goal_status", json!({ "goal_id": id })),
            "goal_status" if result.contains("\"status\": \"ready\"") => {
                return tool("goal_proof", json!({ "goal_id": id, "markdown": true }))
            }
            "goal_status" if result.contains("\"status\": \"running\"") => {
                return tool("goal_status", json!({ "goal_id": id }))
            }
            "goal_proof" => return Reply::Text(format!("Done: goal {id} is ready.")),
            _ => {}
        }
        Reply::Text(format!("Stopped: {result}"))
    });
    let home = f.tmp.path().join("kimi-home");
    std::fs::create_dir_all(&home).unwrap();
    let config = f.tmp.path().join("mcp.json");
    let mut servers =
        serde_json::from_slice::<Value>(&f.omk(&["mcp", "--print-config"]).stdout).unwrap();
    // The client starts the server with the variables it is given: the
    // test's own state home is one.
    servers["mcpServers"]["omk"]["env"] = json!({ "OMK_HOME": f.home });
    std::fs::write(&config, servers.to_string()).unwrap();
    let out = Command::new("kimi")
        .args([
            "--print",
            "--output-format",
            "stream-json",
            "--max-steps-per-turn",
            "60",
            "-w",
        ])
        .arg(&f.repo)
        .arg("--mcp-config-file")
        .arg(&config)
        .args(["-p", "Run the goal with omk and show me its proof."])
        .envs(kimi::env(Product::Python, &llm.base_url, &home))
        .env("OMK_HOME", &f.home)
        .current_dir(&f.repo)
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The transcript shows the tools' results: the id, the status, the proof.
    let tool_results: Vec<Value> = transcript
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["role"] == "tool")
        .collect();
    let seen: Vec<&str> = tool_results
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    let seen = seen.join("\n");
    let id =
        goal_id_in(&seen).unwrap_or_else(|| panic!("no goal id in the transcript:\n{transcript}"));
    assert!(seen.contains(&id), "{transcript}");
    assert!(seen.contains("ready"), "{transcript}");
    assert!(
        seen.contains("Omk") || seen.contains("proof"),
        "{transcript}"
    );
    assert!(
        transcript.contains(&format!("Done: goal {id} is ready.")),
        "{transcript}"
    );
    // The goal is ready, and its tree is the one the same plan gives from
    // the command line.
    let status: Value =
        serde_json::from_slice(&f.omk(&["goal", "status", &id, "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "ready");
    let plan_file = f.plan(the_plan);
    let (code, cli, stderr) = f.run_goal(&plan_file, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status["integration"]["tree"], cli["integration"]["tree"]);
}
