//! A scripted OpenAI-compatible chat-completions server with SSE streaming,
//! on 127.0.0.1, that the real Kimi CLIs are pointed at in tests.
//!
//! A script sees each request body and answers with a [`Reply`]: a tool
//! call, final text, an HTTP error status, or any of these after a delay.
//! Usage figures are sent in the final chunk, as the real API does, and
//! recorded so tests can compare them with what omk reports.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A call of `name` with `arguments`.
    Tool { name: String, arguments: Value },
    /// Final assistant text.
    Text(String),
    /// An HTTP error status with an OpenAI-style error body.
    Status(u16),
    /// The reply after a pause.
    Delay(Duration, Box<Reply>),
}

/// One answered request, as recorded.
#[derive(Debug, Clone)]
pub struct Served {
    pub body: Value,
    pub status: u16,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

type Script = dyn Fn(&Value, usize) -> Reply + Send + Sync;

/// The running server; it stops when the test process ends.
pub struct LlmServer {
    /// `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    served: Arc<Mutex<Vec<Served>>>,
    arrived: Arc<AtomicUsize>,
}

impl LlmServer {
    /// Starts a server answering with `script(body, request_number)`.
    pub fn start(script: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> LlmServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let counter = Arc::new(AtomicUsize::new(0));
        let arrived = counter.clone();
        {
            let served = served.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (served, script, counter) =
                        (served.clone(), script.clone(), counter.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &*script, &counter, &served);
                    });
                }
            });
        }
        LlmServer {
            base_url,
            served,
            arrived,
        }
    }

    /// How many chat requests have arrived (answered or not yet).
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Every request answered so far.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: TcpStream,
    script: &Script,
    counter: &AtomicUsize,
    served: &Mutex<Vec<Served>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if !request_line.contains("/chat/completions") {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let mut reply = script(&body, n);
    while let Reply::Delay(d, next) = reply {
        std::thread::sleep(d);
        reply = *next;
    }
    let prompt_tokens = 100 + (n as u64 % 7) * 10;
    let completion_tokens = 20 + (n as u64 % 3);
    if let Reply::Status(code) = reply {
        served.lock().unwrap().push(Served {
            body,
            status: code,
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        let err = json!({"error": {"message": format!("scripted error {code}"), "type": "server_error", "code": code}}).to_string();
        let head = format!(
            "HTTP/1.1 {code} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            err.len()
        );
        stream.write_all(head.as_bytes())?;
        return stream.write_all(err.as_bytes());
    }
    served.lock().unwrap().push(Served {
        body,
        status: 200,
        prompt_tokens,
        completion_tokens,
    });
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")?;
    let id = format!("chatcmpl-{n}");
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-model",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = Vec::new();
    match reply {
        Reply::Tool { name, arguments } => {
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            events.push(chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": format!("call_{n}"), "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            for part in [a, b] {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            events.push(chunk(json!({}), json!("tool_calls")));
        }
        Reply::Text(text) => {
            events.push(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            ));
            for word in text.split_inclusive(' ') {
                events.push(chunk(json!({"content": word}), Value::Null));
            }
            events.push(chunk(json!({}), json!("stop")));
        }
        Reply::Status(_) | Reply::Delay(..) => unreachable!(),
    }
    events.push(json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-model", "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}}));
    for e in events {
        stream.write_all(format!("data: {e}\n\n").as_bytes())?;
    }
    stream.write_all(b"data: [DONE]\n\n")?;
    stream.flush()
}

/// All text in a request's messages (string or content-part form).
pub fn message_text(body: &Value) -> String {
    let mut out = String::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => out.push_str(s),
            Value::Array(parts) => {
                for p in parts {
                    if let Some(t) = p["text"].as_str() {
                        out.push_str(t);
                    }
                }
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// The slice a request works for, from omk's prompt ("Your slice: ID").
pub fn slice_of(body: &Value) -> Option<String> {
    let text = message_text(body);
    let rest = text.split("Your slice: ").nth(1)?;
    Some(rest.split(|c: char| c.is_whitespace()).next()?.to_string())
}

/// Whether the last message is a tool result (so the turn should end).
pub fn after_tool(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool")
}

/// The file-writing tool the agent offers: `WriteFile` (Python CLI) or `Write` (Kimi Code).
pub fn write_tool(body: &Value) -> String {
    let names: Vec<&str> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    if names.contains(&"WriteFile") {
        "WriteFile"
    } else {
        "Write"
    }
    .to_string()
}

/// The standard script: write `<slice>.txt` with its own tool, then finish.
pub fn write_slice_file(body: &Value, _n: usize) -> Reply {
    if after_tool(body) {
        return Reply::Text("Done: I wrote the file.".into());
    }
    let slice = slice_of(body).unwrap_or_else(|| "unknown".into());
    Reply::Tool {
        name: write_tool(body),
        arguments: json!({"path": format!("{slice}.txt"), "content": format!("hello from {slice}\n")}),
    }
}
