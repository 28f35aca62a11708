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
