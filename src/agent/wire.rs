//! The `kimi-wire` backend: the Python Kimi CLI's `--wire` JSON-RPC mode.
//!
//! omk chooses the session id (`-S`), sends `initialize` and `prompt`, and
//! reads one JSON object per line: `event` notifications (a `StatusUpdate`
//! per LLM step carries token usage; unknown event types are kept in the
//! transcript and otherwise ignored), `request`s (an `ApprovalRequest` is
//! answered by the slice's policy, with the reason as feedback the model
//! reads), and finally the `prompt` response. A stop sends `cancel` first.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::policy::Request;
use super::{
    report, retryable_text, start_kimi, step_tokens, watch, Activity, AgentExit, Report, Task,
    Update,
};
use crate::error::{Error, IoContext, Result};

/// The wire protocol version omk speaks.
const PROTOCOL: &str = "1.10";

pub(super) async fn run(
    task: &Task,
    updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    let (mut group, session, capture, log) =
        start_kimi(task, &["--wire"], &[], Stdio::piped(), &updates)?;
    let (Some(stdin), Some(stdout)) = (group.child.stdin.take(), group.child.stdout.take()) else {
        return Err(Error::AgentIo("the agent's stdio was not captured".into()));
    };
    let mut wire = Wire {
        stdin: Some(stdin),
        log,
    };
    let hello = json!({"jsonrpc": "2.0", "method": "initialize", "id": "init", "params": {
        "protocol_version": PROTOCOL,
        "client": {"name": "omk", "version": env!("CARGO_PKG_VERSION")},
        "capabilities": {"supports_question": false},
    }});
    let prompt = json!({"jsonrpc": "2.0", "method": "prompt", "id": "prompt", "params": {"user_input": task.prompt}});
    wire.send(hello).await?;
    wire.send(prompt).await?;

    let activity = Activity::new();
    let watcher = watch(task, &activity, cancel);
    tokio::pin!(watcher);
    let mut lines = BufReader::new(stdout).lines();
    let (mut tokens_in, mut tokens_out, mut saw_usage) = (0u64, 0u64, false);
    let mut said = String::new();
    let mut r = loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            stop = &mut watcher => {
                let cancel = json!({"jsonrpc": "2.0", "method": "cancel", "id": "cancel", "params": {}});
                let _ = wire.send(cancel).await;
                break report(stop.into(), None);
            }
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => {
                break report(
                    AgentExit::error("the agent exited before finishing the turn"),
                    None,
                )
            }
            Err(e) => break report(AgentExit::error(format!("reading the agent: {e}")), None),
        };
        activity.touch();
        wire.note("<-", &line);
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match msg["method"].as_str() {
            Some("event") if msg["params"]["type"] == "StatusUpdate" => {
                if let Some((i, o)) = step_tokens(&msg["params"]["payload"]) {
                    tokens_in += i;
                    tokens_out += o;
                    saw_usage = true;
                    let _ = updates.send(Update::Usage {
                        tokens_in,
                        tokens_out: Some(tokens_out),
                    });
                }
            }
            Some("event") if msg["params"]["type"] == "ContentPart" => {
                let part = &msg["params"]["payload"];
                if part["type"] == "text" {
                    said.push_str(part["text"].as_str().unwrap_or_default());
                }
            }
            Some("event") => {}
            Some("request") => {
                let reply = answer(&msg, task, &updates);
                let _ = wire.send(reply).await;
            }
            _ if msg["id"] == "prompt" => break finished(&msg),
            _ => {}
        }
    };
    wire.stdin = None; // closing stdin ends the server
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), group.child.wait()).await;
    group.terminate().await;
    wire.log.close();
    capture.finish().await?;
    if saw_usage {
        r.tokens_in = Some(tokens_in);
        r.tokens_out = Some(tokens_out);
    }
    r.session_id = Some(session);
    r.message = (!said.is_empty()).then_some(said);
    Ok(r)
}

/// The agent's stdin and the transcript.
struct Wire {
    stdin: Option<tokio::process::ChildStdin>,
    log: crate::capture::Transcript,
}

impl Wire {
    fn note(&mut self, direction: &str, line: &str) {
        self.log.note(direction, line);
    }

    async fn send(&mut self, value: Value) -> Result<()> {
        let line = value.to_string();
        self.note("->", &line);
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::AgentIo("the agent's stdin is closed".into()))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .context(|| "writing to kimi --wire".into())?;
        stdin
            .flush()
            .await
            .context(|| "writing to kimi --wire".into())
    }
}

/// The reply to an agent → client request.
fn answer(msg: &Value, task: &Task, updates: &UnboundedSender<Update>) -> Value {
    let id = msg["id"].clone();
    let params = &msg["params"];
    if params["type"] != "ApprovalRequest" {
        let kind = params["type"].as_str().unwrap_or("?");
        return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("omk does not answer {kind} requests")}});
    }
    let payload = &params["payload"];
    let request = approval_request(payload);
    let decision = task.policy.decide(&request);
    let response = if decision.allow { "approve" } else { "reject" };
    let result =
        json!({"request_id": payload["id"], "response": response, "feedback": decision.reason});
    let _ = updates.send(Update::Approval { request, decision });
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// What an `ApprovalRequest` asks to touch.
fn approval_request(payload: &Value) -> Request {
    let mut paths = Vec::new();
    let mut command = None;
    for item in payload["display"].as_array().into_iter().flatten() {
        if let Some(p) = item["path"].as_str() {
            paths.push(p.to_string());
        }
        if let Some(c) = item["command"].as_str() {
            command = Some(c.to_string());
        }
    }
    let sender = payload["sender"].as_str().unwrap_or("tool").to_string();
    if command.is_none() && sender == "Shell" {
        // "Run command `…`"
        let description = payload["description"].as_str().unwrap_or_default();
        command = description.split('`').nth(1).map(str::to_string);
    }
    Request {
        tool: sender,
        paths,
        command,
    }
}

/// The report for the `prompt` response.
fn finished(msg: &Value) -> Report {
    if let Some(err) = msg.get("error") {
        let message = err["message"].as_str().unwrap_or("unknown error");
        let code = err["code"].as_i64().unwrap_or(0);
        let mut r = report(AgentExit::error(message), None);
        r.retryable = code == -32003 || retryable_text(message);
        return r;
    }
    match msg["result"]["status"].as_str() {
        Some("finished") => report(AgentExit::Ok, None),
        Some("cancelled") => report(AgentExit::Cancelled, None),
        Some(other) => report(AgentExit::error(format!("the turn ended {other}")), None),
        None => report(AgentExit::error("the prompt response has no status"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_requests_name_their_paths_and_commands() {
        let edit = json!({"id": "a", "sender": "WriteFile", "description": "Write file `/w/x`",
            "display": [{"type": "diff", "path": "/w/x", "old_text": "", "new_text": "hi"}]});
        assert_eq!(approval_request(&edit).paths, vec!["/w/x"]);
        let shell = json!({"id": "b", "sender": "Shell", "description": "Run command `git push`", "display": []});
        assert_eq!(
            approval_request(&shell).command.as_deref(),
            Some("git push")
        );
    }

    #[test]
    fn prompt_responses_map_to_reports() {
        assert!(finished(&json!({"id": "prompt", "result": {"status": "finished"}})).ok());
        let err = finished(
            &json!({"id": "prompt", "error": {"code": -32003, "message": "Connection error."}}),
        );
        assert!(!err.ok() && err.retryable);
        assert_eq!(
            finished(&json!({"id": "prompt", "result": {"status": "cancelled"}})).exit,
            AgentExit::Cancelled
        );
    }
}
