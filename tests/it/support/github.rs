//! A scripted GitHub REST API on 127.0.0.1: the pull-request endpoints omk
//! uses (list open by head, create, update, read, merge), a pull request's
//! checks (with Actions job logs behind a redirect, as GitHub serves them),
//! its base's protection, its reviews and review comments (and replies on
//! them), as a test scripts them, keeping the pull requests it was asked to
//! open, and recording every request so tests can check what the real
//! client sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path with its query, decoded.
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct World {
    /// `http://127.0.0.1:PORT`.
    base: String,
    requests: Vec<Request>,
    pulls: Vec<Value>,
    /// Answer pull-request creation with this status and message.
    refuse_create: Option<(u16, String)>,
    /// Each pull request's head commit, as the remote holds it.
    heads: std::collections::HashMap<u64, String>,
    /// The bare repository pushes go to: a head not set is read there.
    remote: Option<std::path::PathBuf>,
    /// The check runs on every head: each stays in progress for as many
    /// reads as it has left, then completes as scripted.
    checks: Vec<ScriptedCheck>,
    /// Check runs per head instead: the n-th head asked about gets the
    /// n-th list (the last one for every head after).
    checks_per_head: Vec<Vec<ScriptedCheck>>,
    /// The heads asked about, in order.
    heads_seen: Vec<String>,
    /// Reviews, each shown once this many heads were asked about.
    reviews: Vec<(usize, Value)>,
    /// Review comments, likewise.
    comments: Vec<(usize, Value)>,
    /// The base's required checks; `None`: no protection (404).
    required: Option<Vec<String>>,
    /// Listing by head finds nothing (the head's owner is not the
    /// repository's, as for a fork).
    hide_from_head_search: bool,
    /// Answers to the next merge attempts, before one succeeds.
    merge_refusals: std::collections::VecDeque<(u16, String)>,
}

/// A check run as a test scripts it.
#[derive(Clone)]
struct ScriptedCheck {
    name: String,
    pending_reads: usize,
    conclusion: String,
    summary: String,
    /// Its Actions job's log, when it is one.
    log: Option<String>,
}

/// The running server; it stops when the test process ends.
pub struct GitHubServer {
    /// `http://127.0.0.1:PORT/api/v3`, as `GITHUB_API_URL` is on GitHub Enterprise.
    pub api_url: String,
    world: Arc<Mutex<World>>,
}

impl GitHubServer {
    pub fn start() -> GitHubServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api_url = format!("{base}/api/v3");
        let world = Arc::new(Mutex::new(World {
            base,
            ..World::default()
        }));
        let shared = world.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let world = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &world);
                });
            }
        });
        GitHubServer { api_url, world }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.world.lock().unwrap().requests.clone()
    }

    /// The pull requests opened so far, as the API shows them.
    pub fn pulls(&self) -> Vec<Value> {
        self.world.lock().unwrap().pulls.clone()
    }

    /// Makes listing pull requests by head find nothing, as for a fork.
    pub fn hide_from_head_search(&self) {
        self.world.lock().unwrap().hide_from_head_search = true;
    }

    /// Reads pull requests' heads from the bare repository pushes go to.
    pub fn heads_from(&self, bare: &std::path::Path) {
        self.world.lock().unwrap().remote = Some(bare.to_path_buf());
    }

    /// Says pull request `number`'s head is `sha`.
    pub fn set_head(&self, number: u64, sha: &str) {
        self.world
            .lock()
            .unwrap()
            .heads
            .insert(number, sha.to_string());
    }

    /// Scripts the check runs: `(name, reads it stays pending, conclusion, summary)`.
    pub fn script_checks(&self, checks: &[(&str, usize, &str, &str)]) {
        self.world.lock().unwrap().checks = checks
            .iter()
            .map(|(name, pending_reads, conclusion, summary)| ScriptedCheck {
                name: name.to_string(),
                pending_reads: *pending_reads,
                conclusion: conclusion.to_string(),
                summary: summary.to_string(),
                log: None,
            })
            .collect();
    }

    /// Scripts the check runs per head, as Actions jobs with logs:
    /// `(name, reads it stays pending, conclusion, log)`; the n-th head
    /// asked about gets the n-th list.
    pub fn script_checks_per_head(&self, heads: &[&[(&str, usize, &str, &str)]]) {
        self.world.lock().unwrap().checks_per_head = heads
            .iter()
            .map(|checks| {
                checks
                    .iter()
                    .map(|(name, pending_reads, conclusion, log)| ScriptedCheck {
                        name: name.to_string(),
                        pending_reads: *pending_reads,
                        conclusion: conclusion.to_string(),
                        summary: String::new(),
                        log: Some(log.to_string()),
                    })
                    .collect()
            })
            .collect();
    }

    /// A review by `user` in `state` saying `body`, with comments
    /// `(id, path, line, body)`, shown once `after_heads` heads were asked about.
    pub fn script_review(
        &self,
        after_heads: usize,
        id: u64,
        (user, state, body): (&str, &str, &str),
        comments: &[(u64, &str, u64, &str)],
    ) {
        let mut world = self.world.lock().unwrap();
        world.reviews.push((
            after_heads,
            json!({ "id": id, "user": { "login": user }, "state": state, "body": body }),
        ));
        for (cid, path, line, text) in comments {
            world.comments.push((
                after_heads,
                json!({ "id": cid, "pull_request_review_id": id, "user": { "login": user },
                        "path": path, "line": line, "body": text }),
            ));
        }
    }

    /// The heads whose checks were asked about, in order.
    pub fn heads_seen(&self) -> Vec<String> {
        self.world.lock().unwrap().heads_seen.clone()
    }

    /// Protects the base: these checks are required.
    pub fn require(&self, checks: &[&str]) {
        self.world.lock().unwrap().required = Some(checks.iter().map(|c| c.to_string()).collect());
    }

    /// Refuses the next merge attempt with `status` and `message`.
    pub fn refuse_merge(&self, status: u16, message: &str) {
        let mut world = self.world.lock().unwrap();
        world
            .merge_refusals
            .push_back((status, message.to_string()));
    }

    /// Makes the next creation fail with `status` and GitHub's `message`.
    pub fn refuse_create(&self, status: u16, message: &str) {
        self.world.lock().unwrap().refuse_create = Some((status, message.to_string()));
    }
}

fn serve(stream: TcpStream, world: &Mutex<World>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = decode(parts.next().unwrap_or_default());
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, answer) = {
        let mut world = world.lock().unwrap();
        world.requests.push(Request {
            method: method.clone(),
            path: path.clone(),
            authorization,
            body: body.clone(),
        });
        answer(&mut world, &method, &path, &body)
    };
    let mut stream = stream;
    // A job's log is served as GitHub does: a redirect to its storage,
    // which answers with plain text.
    if let (302, Some(to)) = (status, answer["location"].as_str()) {
        write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return stream.flush();
    }
    let (kind, text) = match &answer {
        Value::String(raw) => ("text/plain", raw.clone()),
        json => ("application/json", json.to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn answer(world: &mut World, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let parts: Vec<&str> = route
        .trim_start_matches("/api/v3/")
        .trim_start_matches('/')
        .split('/')
        .collect();
    match (method, parts.as_slice()) {
        ("GET", ["repos", owner, _, "pulls"]) => {
            let head = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("head="))
                .unwrap_or_default();
            let by_head = !head.is_empty();
            if by_head && world.hide_from_head_search {
                return (200, json!([]));
            }
            let open: Vec<Value> = world
                .pulls
                .iter()
                .filter(|p| {
                    p["state"] == "open"
                        && (!by_head
                            || format!("{owner}:{}", p["head"]["ref"].as_str().unwrap()) == head)
                })
                .cloned()
                .collect();
            (200, Value::Array(open))
        }
        ("POST", ["repos", owner, name, "pulls"]) => {
            if let Some((status, message)) = world.refuse_create.take() {
                return (
                    status,
                    json!({ "message": message, "errors": [{ "resource": "PullRequest", "code": "custom", "message": "No commits between main and the head" }] }),
                );
            }
            let exists = world
                .pulls
                .iter()
                .any(|p| p["state"] == "open" && p["head"]["ref"] == body["head"]);
            if exists {
                let said = format!(
                    "A pull request already exists for {owner}:{}.",
                    body["head"].as_str().unwrap_or_default()
                );
                return (
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "code": "custom", "message": said }] }),
                );
            }
            let number = world.pulls.len() as u64 + 1;
            let pull = json!({
                "number": number,
                "html_url": format!("https://github.example/{owner}/{name}/pull/{number}"),
                "state": "open",
                "title": body["title"], "body": body["body"], "draft": body["draft"],
                "head": { "ref": body["head"] }, "base": { "ref": body["base"] },
            });
            world.pulls.push(pull.clone());
            (201, pull)
        }
        ("PATCH", ["repos", _, _, "pulls", number]) => {
            let Some(pull) = pull_mut(world, number) else {
                return (404, json!({ "message": "Not Found" }));
            };
            for key in ["title", "body"] {
                if let Some(v) = body.get(key) {
                    pull[key] = v.clone();
                }
            }
            (200, pull.clone())
        }
        ("GET", ["repos", _, _]) => (
            200,
            json!({ "allow_squash_merge": true, "allow_merge_commit": true }),
        ),
        ("GET", ["repos", _, _, "pulls", number]) => {
            let head = head_of(world, number);
            let Some(pull) = pull_mut(world, number) else {
                return (404, json!({ "message": "Not Found" }));
            };
            pull["head"]["sha"] = json!(head);
            (200, pull.clone())
        }
        ("GET", ["repos", _, _, "commits", sha, "check-runs"]) => {
            if !world.heads_seen.iter().any(|h| h == sha) {
                world.heads_seen.push(sha.to_string());
            }
            let nth = world.heads_seen.iter().position(|h| h == sha).unwrap_or(0);
            let checks = match world.checks_per_head.len() {
                0 => &mut world.checks,
                n => &mut world.checks_per_head[nth.min(n - 1)],
            };
            let runs: Vec<Value> = checks
                .iter_mut()
                .enumerate()
                .map(|(i, c)| {
                    let done = c.pending_reads == 0;
                    c.pending_reads = c.pending_reads.saturating_sub(1);
                    json!({ "id": (nth + 1) * 100 + i + 1, "name": c.name,
                        "status": if done { "completed" } else { "in_progress" },
                        "conclusion": if done { json!(c.conclusion) } else { Value::Null },
                        "app": { "slug": if c.log.is_some() { "github-actions" } else { "ci-app" } },
                        "output": { "title": c.name, "summary": c.summary } })
                })
                .collect();
            (
                200,
                json!({ "total_count": runs.len(), "check_runs": runs }),
            )
        }
        ("GET", ["repos", _, _, "actions", "jobs", job, "logs"]) => {
            let to = format!("{}/storage/logs/{job}", world.base);
            (302, json!({ "location": to }))
        }
        ("GET", ["storage", "logs", job]) => {
            let job: usize = job.parse().unwrap_or(0);
            let (nth, i) = (job / 100, job % 100);
            let log = world
                .checks_per_head
                .get(nth.saturating_sub(1))
                .and_then(|checks| checks.get(i.saturating_sub(1)))
                .and_then(|c| c.log.clone());
            match log {
                // As Actions writes it: a timestamp before every line.
                Some(log) => (
                    200,
                    Value::String(
                        log.lines()
                            .map(|l| format!("2026-12-07T06:00:00.0000000Z {l}\n"))
                            .collect(),
                    ),
                ),
                None => (404, json!({ "message": "Not Found" })),
            }
        }
        ("GET", ["repos", _, _, "pulls", _, "reviews"]) => {
            let seen = world.heads_seen.len();
            let shown: Vec<Value> = world
                .reviews
                .iter()
                .filter(|(after, _)| seen >= *after)
                .map(|(_, r)| r.clone())
                .collect();
            (200, Value::Array(shown))
        }
        ("GET", ["repos", _, _, "pulls", _, "comments"]) => {
            let seen = world.heads_seen.len();
            let shown: Vec<Value> = world
                .comments
                .iter()
                .filter(|(after, _)| seen >= *after)
                .map(|(_, c)| c.clone())
                .collect();
            (200, Value::Array(shown))
        }
        ("POST", ["repos", _, _, "pulls", _, "comments", comment, "replies"]) => {
            let id = 9000 + world.comments.len() as u64;
            let of = comment.parse::<u64>().unwrap_or(0);
            let path = world
                .comments
                .iter()
                .find(|(_, c)| c["id"] == of)
                .map(|(_, c)| c["path"].clone())
                .unwrap_or(Value::Null);
            let reply = json!({ "id": id, "in_reply_to_id": of, "path": path,
                "body": body["body"], "user": { "login": "omk-bot" } });
            let after = world.heads_seen.len();
            world.comments.push((after, reply.clone()));
            (201, reply)
        }
        ("GET", ["repos", _, _, "commits", _, "status"]) => (
            200,
            json!({ "state": "pending", "total_count": 0, "statuses": [] }),
        ),
        ("GET", ["repos", _, _, "branches", _, "protection", "required_status_checks"]) => {
            match &world.required {
                Some(contexts) => (200, json!({ "strict": false, "contexts": contexts })),
                None => (404, json!({ "message": "Branch not protected" })),
            }
        }
        ("PUT", ["repos", _, _, "pulls", number, "merge"]) => {
            if let Some((status, message)) = world.merge_refusals.pop_front() {
                return (status, json!({ "message": message }));
            }
            if Some(head_of(world, number).as_str()) != body["sha"].as_str() {
                return (
                    409,
                    json!({ "message": "Head branch was modified. Review and try the merge again." }),
                );
            }
            let Some(pull) = pull_mut(world, number) else {
                return (404, json!({ "message": "Not Found" }));
            };
            let sha = "feed000000000000000000000000000000000001";
            pull["state"] = json!("closed");
            pull["merged"] = json!(true);
            pull["merge_commit_sha"] = json!(sha);
            (
                200,
                json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }),
            )
        }
        _ => (404, json!({ "message": "Not Found" })),
    }
}

/// Pull request `number`'s head commit: as set, else as the remote holds
/// its branch.
fn head_of(world: &mut World, number: &str) -> String {
    let n = number.parse::<u64>().unwrap_or(0);
    if let Some(sha) = world.heads.get(&n) {
        return sha.clone();
    }
    let branch = pull_mut(world, number)
        .and_then(|p| p["head"]["ref"].as_str().map(str::to_string))
        .unwrap_or_default();
    let Some(bare) = &world.remote else {
        return String::new();
    };
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(bare)
        .args([
            "rev-parse",
            "-q",
            "--verify",
            &format!("refs/heads/{branch}"),
        ])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Pull request `number`, if it was opened.
fn pull_mut<'a>(world: &'a mut World, number: &str) -> Option<&'a mut Value> {
    let n = number.parse::<u64>().ok()?;
    world
        .pulls
        .iter_mut()
        .find(|p| p["number"].as_u64() == Some(n))
}

/// `%XX` decoded.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
