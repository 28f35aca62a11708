//! The ACP backend (`kimi`, `acp:<command>`): an Agent Client Protocol client
//! built on the official `agent-client-protocol` crate.
//!
//! It starts the agent in the worktree, opens a session there, sends the
//! prompt, records every session update in the transcript, answers
//! `session/request_permission` with the slice's policy (choosing options by
//! their kind, since Kimi Code and the Python CLI name them differently), and
//! cancels with `session/cancel` before killing the process group.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, InitializeRequest, LoadSessionRequest, NewSessionRequest,
    PermissionOptionKind, PromptRequest, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, SelectedPermissionOutcome, SessionId, SessionNotification,
    SessionUpdate, StopReason, TextContent, ToolCallContent, ToolCallUpdateFields,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Agent, ByteStreams, V1};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

use super::policy::Request;
use super::{report, watch, Activity, AgentExit, Report, Stop, Task, Update};
use crate::error::{Error, Result};

/// How many times a turn that ended after refusals is continued.
const MAX_FOLLOW_UPS: u32 = 3;

/// The prompt that tells the agent what was refused and asks it to go on.
fn follow_up(refused: &[String]) -> String {
    let mut text = String::from("omk's approval policy refused some of your requests:\n");
    for r in refused {
        text += &format!("- {r}\n");
    }
    text += "This is not a reason to stop: continue your task, working only inside your worktree.";
    text
}

/// How long to wait after a turn for a usage update that trails it.
const TRAILING_USAGE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The transcript: one JSON line per message, shared by the handlers.
struct Transcript(crate::capture::Transcript);

impl Transcript {
    fn write(&self, direction: &str, value: &impl serde::Serialize) {
        if let Ok(json) = serde_json::to_string(value) {
            self.0.note(direction, &json);
        }
    }
}

/// What a session ended with.
enum Ended {
    Turn(StopReason),
    Stopped(Stop),
}

/// What the agent told us so far, gathered by the handlers.
#[derive(Default)]
struct Heard {
    /// The largest context size it reported, and its own cost figure.
    context_tokens: Option<u64>,
    usd: Option<f64>,
    /// The session it runs.
    session_id: Option<String>,
    /// Requests refused since the last turn, to tell it why.
    denials: Vec<String>,
    /// Its messages, for the report.
    said: String,
}

/// The client side of one session, shared by the notification and request
/// handlers and the conversation.
struct Client {
    transcript: Transcript,
    activity: Activity,
    updates: UnboundedSender<Update>,
    policy: super::policy::Policy,
    heard: Mutex<Heard>,
    /// Signalled when a usage update arrives.
    usage_seen: tokio::sync::Notify,
}

impl Client {
    fn heard(&self) -> std::sync::MutexGuard<'_, Heard> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `session/update`: recorded, its text and usage kept.
    fn on_update(&self, n: &SessionNotification) {
        self.activity.touch();
        self.transcript.write("<-", n);
        match &n.update {
            SessionUpdate::AgentMessageChunk(chunk) => {
                if let ContentBlock::Text(t) = &chunk.content {
                    self.heard().said.push_str(&t.text);
                }
            }
            SessionUpdate::UsageUpdate(u) => {
                let used = {
                    let mut heard = self.heard();
                    let used = heard.context_tokens.map_or(u.used, |prev| prev.max(u.used));
                    heard.context_tokens = Some(used);
                    if let Some(cost) = &u.cost {
                        heard.usd = Some(cost.amount);
                    }
                    used
                };
                let _ = self.updates.send(Update::Usage {
                    tokens_in: used,
                    tokens_out: None,
                });
                self.usage_seen.notify_one();
            }
            _ => {}
        }
    }

    /// A `session/request_permission`, answered by the slice's policy with
    /// the option of the matching kind.
    fn on_permission(&self, request: &RequestPermissionRequest) -> RequestPermissionResponse {
        self.activity.touch();
        self.transcript.write("<-", request);
        let asked = to_request(&request.tool_call.fields);
        let decision = self.policy.decide(&asked);
        let kinds: &[PermissionOptionKind] = if decision.allow {
            &[
                PermissionOptionKind::AllowOnce,
                PermissionOptionKind::AllowAlways,
            ]
        } else {
            &[
                PermissionOptionKind::RejectOnce,
                PermissionOptionKind::RejectAlways,
            ]
        };
        let chosen = kinds.iter().find_map(|k| {
            request
                .options
                .iter()
                .find(|o| o.kind == *k)
                .map(|o| o.option_id.clone())
        });
        if !decision.allow {
            self.heard()
                .denials
                .push(format!("{}: {}", asked.tool, decision.reason));
        }
        let _ = self.updates.send(Update::Approval {
            request: asked,
            decision,
        });
        let outcome = match chosen {
            Some(id) => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id)),
            None => RequestPermissionOutcome::Cancelled,
        };
        let response = RequestPermissionResponse::new(outcome);
        self.transcript.write("->", &response);
        response
    }

    /// The session: initialize, load the interrupted session or open a new
    /// one, then the prompt and any follow-ups, until the turn ends or the
    /// attempt is stopped.
    async fn converse(
        &self,
        connection: ConnectionTo<Agent>,
        task: &Task,
        cancel: &CancellationToken,
    ) -> std::result::Result<(Ended, Option<(u64, u64)>), agent_client_protocol::Error> {
        let init = connection
            .send_request(InitializeRequest::new(ProtocolVersion::V1))
            .block_task()
            .await?;
        self.activity.touch();
        self.transcript.write("<-", &init);
        let session_id = self
            .open_session(&connection, task, init.agent_capabilities.load_session)
            .await?;
        self.activity.touch();
        let _ = self.updates.send(Update::Session {
            id: session_id.to_string(),
        });
        self.heard().session_id = Some(session_id.to_string());
        // ACP has no way to tell the model why a permission was refused, and
        // some agents end their turn on a refusal: so after a turn with
        // refusals, say why in a follow-up prompt and let it go on.
        let mut text = task.prompt.clone();
        let mut follow_ups = 0;
        let watcher = watch(task, &self.activity, cancel);
        tokio::pin!(watcher);
        loop {
            let request = PromptRequest::new(
                session_id.clone(),
                vec![ContentBlock::Text(TextContent::new(text))],
            );
            self.transcript.write("->", &request);
            let turn = connection.send_request(request).block_task();
            let done = tokio::select! {
                done = turn => done?,
                stop = &mut watcher => {
                    let _ = connection.send_notification(CancelNotification::new(session_id));
                    return Ok((Ended::Stopped(stop), None));
                }
            };
            self.transcript.write("<-", &done);
            let refused = std::mem::take(&mut self.heard().denials);
            if done.stop_reason == StopReason::EndTurn
                && !refused.is_empty()
                && follow_ups < MAX_FOLLOW_UPS
            {
                follow_ups += 1;
                text = follow_up(&refused);
                continue;
            }
            let tokens = done
                .usage
                .as_ref()
                .map(|u| (u.input_tokens, u.output_tokens));
            // Kimi Code may send the turn's usage update just after the turn ends.
            let have_usage = self.heard().context_tokens.is_some();
            if tokens.is_none() && !have_usage {
                let _ = tokio::time::timeout(TRAILING_USAGE_WAIT, self.usage_seen.notified()).await;
            }
            return Ok((Ended::Turn(done.stop_reason), tokens));
        }
    }

    /// An interrupted attempt continues its own session where the agent can
    /// load one; otherwise, or if loading fails, a new one.
    async fn open_session(
        &self,
        connection: &ConnectionTo<Agent>,
        task: &Task,
        can_load: bool,
    ) -> std::result::Result<SessionId, agent_client_protocol::Error> {
        let cwd = task.worktree.clone();
        if let (Some(id), true) = (&task.resume_session, can_load) {
            let request = LoadSessionRequest::new(id.clone(), cwd.clone());
            self.transcript.write("->", &request);
            if let Ok(response) = connection.send_request(request).block_task().await {
                self.transcript.write("<-", &response);
                return Ok(SessionId::new(id.clone()));
            }
        }
        let new = connection
            .send_request(NewSessionRequest::new(cwd))
            .block_task()
            .await?;
        self.transcript.write("<-", &new);
        Ok(new.session_id.clone())
    }
}

pub(super) async fn run(
    command: &str,
    task: &Task,
    updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    let words = shell_words(command)?;
    // Its stderr and omk's transcript share one bounded log.
    let capture = crate::capture::Capture::start(&task.log)?;
    let log = capture.transcript()?;
    let stderr = capture.stdio()?;
    let mut cmd = task.command(&words[0], command)?;
    cmd.args(&words[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut group = super::spawn(cmd, task, command)?;
    let (Some(stdin), Some(stdout)) = (group.child.stdin.take(), group.child.stdout.take()) else {
        return Err(Error::AgentIo("the agent's stdio was not captured".into()));
    };
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let client = Arc::new(Client {
        transcript: Transcript(log),
        activity: Activity::new(),
        updates,
        policy: task.policy.clone(),
        heard: Mutex::new(Heard::default()),
        usage_seen: tokio::sync::Notify::new(),
    });
    let on_update = {
        let client = client.clone();
        async move |n: SessionNotification, _cx| {
            client.on_update(&n);
            Ok(())
        }
    };
    let on_permission = {
        let client = client.clone();
        async move |request: RequestPermissionRequest,
                    responder: agent_client_protocol::Responder<RequestPermissionResponse, V1>,
                    _cx|
                    -> std::result::Result<(), agent_client_protocol::Error> {
            responder.respond(client.on_permission(&request))
        }
    };
    let session = {
        let (client, task, cancel) = (client.clone(), task.clone(), cancel.clone());
        async move |connection: ConnectionTo<Agent>| {
            client.converse(connection, &task, &cancel).await
        }
    };
    let outcome = agent_client_protocol::Client
        .v1()
        .on_receive_notification(on_update, agent_client_protocol::on_receive_notification!())
        .on_receive_request(on_permission, agent_client_protocol::on_receive_request!())
        .connect_with(transport, session)
        .await;
    group.terminate().await;
    client.transcript.0.close();
    capture.finish().await?;

    let mut r = match outcome {
        Ok((Ended::Turn(StopReason::EndTurn), _)) => report(AgentExit::Ok, None),
        Ok((Ended::Turn(reason), _)) => report(
            AgentExit::error(format!("the turn ended with {}", stop_reason(reason))),
            None,
        ),
        Ok((Ended::Stopped(stop), _)) => report(stop.into(), None),
        Err(ref e) => {
            let status = group.child.try_wait().ok().flatten();
            report(AgentExit::error(e), status.and_then(|s| s.code()))
        }
    };
    let heard = std::mem::take(&mut *client.heard());
    match &outcome {
        Ok((_, Some((tokens_in, tokens_out)))) => {
            r.tokens_in = Some(*tokens_in);
            r.tokens_out = Some(*tokens_out);
        }
        _ => r.tokens_in = heard.context_tokens,
    }
    r.usd = heard.usd;
    r.session_id = heard.session_id;
    r.set_message(&heard.said);
    Ok(r)
}

fn stop_reason(reason: StopReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"))
}

/// What a tool call asks to touch, for the policy.
fn to_request(fields: &ToolCallUpdateFields) -> Request {
    let mut paths: Vec<String> = Vec::new();
    for loc in fields.locations.iter().flatten() {
        paths.push(loc.path.display().to_string());
    }
    for c in fields.content.iter().flatten() {
        if let ToolCallContent::Diff(d) = c {
            paths.push(d.path.display().to_string());
        }
    }
    let mut command = None;
    if let Some(input) = &fields.raw_input {
        for key in ["path", "file_path", "filePath", "file"] {
            if let Some(p) = input.get(key).and_then(|v| v.as_str()) {
                paths.push(p.to_string());
            }
        }
        command = input
            .get("command")
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
    paths.sort();
    paths.dedup();
    Request {
        tool: fields
            .name
            .clone()
            .or_else(|| fields.title.clone())
            .or_else(|| {
                fields
                    .kind
                    .as_ref()
                    .map(|k| format!("{k:?}").to_lowercase())
            })
            .unwrap_or_else(|| "tool".into()),
        paths,
        command,
    }
}

/// Splits an `acp:` command line into words (quotes and backslashes as in sh).
pub(super) fn shell_words(command: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::Usage(format!(
            "--agent acp:{command}: unclosed quote"
        )));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(Error::Usage("the agent spec `acp:` needs a command".into()));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_sh() {
        assert_eq!(shell_words("kimi acp").unwrap(), vec!["kimi", "acp"]);
        assert_eq!(
            shell_words(r#"'/opt/my agent/bin' --flag "a b" c\ d"#).unwrap(),
            vec!["/opt/my agent/bin", "--flag", "a b", "c d"]
        );
        assert!(shell_words("'open").is_err());
    }
}
