//! omk's egress proxy: the only way out of a confined process's network.
//!
//! Each [`Egress`] (one per agent attempt or gate run) listens on a Unix
//! socket of its own in a private directory outside every sandbox. Inside
//! the sandbox a forwarder ([`super::forward`]) that the agent cannot touch
//! passes the connections made to its loopback proxy port here. The proxy
//! speaks plain HTTP proxying: `CONNECT host:port` (TLS and anything else)
//! and absolute-form requests (`GET http://host/…`). A destination the
//! [`AllowList`] does not name is answered `403` and counted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

use super::egress::{is_loopback, AllowList, NetworkPolicy, NetworkRecord, Refusals};
use crate::error::{Error, Result};

/// The name of the proxy's socket in its directory.
pub const SOCKET: &str = "proxy.sock";

/// The most a request head may hold before it is refused.
const MAX_HEAD: usize = 16 * 1024;

/// One confined process's (or attempt's) way out: what it may reach, the
/// proxy that enforces it once started, and what it was refused.
#[derive(Debug)]
pub struct Egress {
    allow: AllowList,
    refusals: Arc<Refusals>,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Egress {
    /// Egress to the hosts `allow` names, and nowhere else.
    pub fn new(allow: AllowList) -> Egress {
        Egress {
            allow,
            refusals: Arc::default(),
            running: Mutex::new(None),
        }
    }

    /// What may be reached.
    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    /// The directory holding the proxy's socket ([`SOCKET`]), starting the
    /// proxy on first use. Needs a tokio runtime.
    pub fn socket_dir(&self) -> Result<PathBuf> {
        let mut running = self
            .running
            .lock()
            .map_err(|_| Error::Sandbox("the egress proxy's lock was poisoned".into()))?;
        if let Some(r) = running.as_ref() {
            return Ok(r.dir.clone());
        }
        let dir = private_dir()?;
        let listener = std::os::unix::net::UnixListener::bind(dir.join(SOCKET))
            .map_err(|e| Error::io(format!("starting the egress proxy in {}", dir.display()), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("starting the egress proxy", e))?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Sandbox("the egress proxy needs a tokio runtime".into()))?;
        let _guard = handle.enter();
        let listener = UnixListener::from_std(listener)
            .map_err(|e| Error::io("starting the egress proxy", e))?;
        let (allow, refusals) = (Arc::new(self.allow.clone()), self.refusals.clone());
        let task = handle.spawn(serve(listener, allow, refusals));
        *running = Some(Running {
            dir: dir.clone(),
            task,
        });
        Ok(dir)
    }

    /// The record of this egress so far.
    pub fn record(&self) -> NetworkRecord {
        NetworkRecord {
            policy: NetworkPolicy::Proxied,
            allowed: self.allow.names(),
            refused: self.refusals.list(),
        }
    }
}

/// A new directory only omk's user can enter, short enough for a socket path.
fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let base = match base.as_os_str().len() < 64 {
        true => base,
        false => PathBuf::from("/tmp"),
    };
    for _ in 0..8 {
        let dir = base.join(format!("omk-egress-{:016x}", rand::random::<u64>()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
        }
    }
    Err(Error::Sandbox(format!(
        "could not make a directory for the egress proxy in {}",
        base.display()
    )))
}

async fn serve(listener: UnixListener, allow: Arc<AllowList>, refusals: Arc<Refusals>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let (allow, refusals) = (allow.clone(), refusals.clone());
        tokio::spawn(async move {
            let _ = handle(client, &allow, &refusals).await;
        });
    }
}

/// What a client asked the proxy for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    host: String,
    port: u16,
    /// `CONNECT`: a tunnel; otherwise the head to send upstream, in origin form.
    forward_head: Option<Vec<u8>>,
}

async fn handle(
    mut client: UnixStream,
    allow: &AllowList,
    refusals: &Refusals,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return reply(&mut client, "431 Request Header Fields Too Large", "").await;
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let request = match parse(&buf[..head_end]) {
        Ok(r) => r,
        Err(why) => return reply(&mut client, "400 Bad Request", &why).await,
    };
    if !allow.allows(&request.host, request.port) {
        tracing::info!(host = %request.host, port = request.port, "egress refused");
        refusals.add(&request.host, request.port);
        let shown = match request.host.contains(':') {
            true => format!("[{}]:{}", request.host, request.port),
            false => format!("{}:{}", request.host, request.port),
        };
        let why = format!(
            "omk sandbox: {shown} is not an allowed host; add it to allow_hosts in omk.toml \
             ([sandbox] or the gate's) to allow it\n"
        );
        return reply(&mut client, "403 Forbidden", &why).await;
    }
    let mut upstream = match connect(&request.host, request.port).await {
        Ok(s) => s,
        Err(e) => {
            let why = format!(
                "omk sandbox: cannot reach {}:{}: {e}\n",
                request.host, request.port
            );
            return reply(&mut client, "502 Bad Gateway", &why).await;
        }
    };
    match &request.forward_head {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?
        }
        Some(head) => upstream.write_all(head).await?,
    }
    upstream.write_all(&buf[head_end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Connects to `host:port`; a name that is not the loopback's may not
/// resolve to it (an allowed name cannot be pointed at the host's own
/// services).
async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let loopback_ok = is_loopback(literal);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((literal, port))
        .await?
        .filter(|a| loopback_ok || !a.ip().is_loopback())
        .collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no address that is not this machine's loopback",
    );
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn reply(client: &mut UnixStream, status: &str, body: &str) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(text.as_bytes()).await?;
    client.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads a proxy request's head: where it goes, and what to send there.
fn parse(head: &[u8]) -> std::result::Result<Request, String> {
    let text =
        std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err("a request line is `METHOD TARGET VERSION`".into());
    };
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = host_port(target, None)?;
        return Ok(Request {
            host,
            port,
            forward_head: None,
        });
    }
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let (authority, path) = match target.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        },
        Some((scheme, _)) => {
            return Err(format!(
                "only http:// is proxied this way, not {scheme}://; use CONNECT"
            ))
        }
        None => {
            let host = headers
                .iter()
                .find_map(|h| {
                    h.split_once(':')
                        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("host"))
                        .map(|(_, v)| v.trim().to_string())
                })
                .ok_or("a request without an absolute URL needs a Host header")?;
            (host, target.to_string())
        }
    };
    let (host, port) = host_port(&authority, Some(80))?;
    let mut out = format!("{method} {path} {version}\r\n");
    for h in headers {
        let name = h.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
        {
            continue;
        }
        out += h;
        out += "\r\n";
    }
    out += "\r\n";
    Ok(Request {
        host,
        port,
        forward_head: Some(out.into_bytes()),
    })
}

/// `host:port`, `[v6]:port`, or a bare host with `default` as its port.
fn host_port(authority: &str, default: Option<u16>) -> std::result::Result<(String, u16), String> {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, after)) => (h.to_string(), after.strip_prefix(':')),
            None => return Err(format!("bad address `{authority}`")),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        },
    };
    let port = match (port, default) {
        (Some(p), _) => p
            .parse::<u16>()
            .map_err(|_| format!("bad port in `{authority}`"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("`{authority}` names no port")),
    };
    if host.is_empty() {
        return Err(format!("`{authority}` names no host"));
    }
    // What is recorded and shown of a host is only ever these characters.
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err("a host name may hold letters, digits, `.`, `-`, `_` and `:` only".into());
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_in_both_forms() {
        let connect =
            parse(b"CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n").unwrap();
        assert_eq!((connect.host.as_str(), connect.port), ("pypi.org", 443));
        assert!(connect.forward_head.is_none());
        let get = parse(
            b"GET http://Index.local:8080/simple/ HTTP/1.1\r\nHost: index.local:8080\r\nProxy-Connection: keep-alive\r\n\r\n",
        )
        .unwrap();
        assert_eq!((get.host.as_str(), get.port), ("index.local", 8080));
        let head = String::from_utf8(get.forward_head.unwrap()).unwrap();
        assert!(head.starts_with("GET /simple/ HTTP/1.1\r\n"), "{head}");
        assert!(!head.to_lowercase().contains("proxy-connection"), "{head}");
        let origin = parse(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
        assert_eq!((origin.host.as_str(), origin.port), ("example.com", 80));
        assert!(parse(b"CONNECT pypi.org HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"GET ftp://x/ HTTP/1.1\r\n\r\n").is_err());
        let v6 = parse(b"CONNECT [::1]:9000 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9000));
    }
}
