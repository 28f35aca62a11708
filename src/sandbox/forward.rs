//! The sandbox's side of its network: a loopback of its own, and a
//! forwarder that carries connections out to omk's proxy.
//!
//! It runs in the sandbox helper (see [`super::jail`]), in the sandbox's
//! network namespace, as a process the command cannot signal or trace (it
//! is outside the command's Landlock domain). It listens on the sandbox's
//! `127.0.0.1`: one port for the proxy (`HTTP_PROXY` and friends name it),
//! and each allowed host loopback port at its own number, so a client that
//! bypasses the proxy for loopback reaches an allowed host service at the
//! same address. Every connection goes to omk's proxy over its Unix socket,
//! reached through a directory descriptor taken before the view was built:
//! the socket itself is nowhere in the sandbox's file system.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The listening sockets, bound in the sandbox's namespace.
pub(super) struct Listeners {
    /// The proxy port and its listener.
    proxy: (u16, TcpListener),
    /// Allowed host loopback ports, each listened on at its own number.
    forwards: Vec<(u16, TcpListener)>,
}

impl Listeners {
    /// Brings the namespace's loopback up and binds the proxy port (any
    /// free one) and each of `ports`.
    pub(super) fn bind(ports: &[u16]) -> Result<Listeners, String> {
        loopback_up()?;
        let proxy = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| format!("binding the sandbox's proxy port: {e}"))?;
        let port = proxy
            .local_addr()
            .map_err(|e| format!("reading the proxy port: {e}"))?
            .port();
        let mut forwards = Vec::new();
        for &p in ports {
            let l = TcpListener::bind(("127.0.0.1", p))
                .map_err(|e| format!("forwarding loopback port {p} into the sandbox: {e}"))?;
            forwards.push((p, l));
            // IPv6 loopback too, where the namespace has it.
            if let Ok(l6) = TcpListener::bind(("::1", p)) {
                forwards.push((p, l6));
            }
        }
        Ok(Listeners {
            proxy: (port, proxy),
            forwards,
        })
    }

    /// The port the proxy variables name.
    pub(super) fn proxy_port(&self) -> u16 {
        self.proxy.0
    }

    /// Serves forever: every connection is carried to the socket at `proxy`.
    pub(super) fn serve(self, proxy: PathBuf) -> ! {
        let mut threads = Vec::new();
        for (port, listener) in self.forwards {
            let proxy = proxy.clone();
            threads.push(std::thread::spawn(move || {
                accept(listener, proxy, Some(port))
            }));
        }
        accept(self.proxy.1, proxy, None);
        // `accept` only returns when its listener fails.
        // SAFETY: leaving the forwarder process.
        unsafe { libc::_exit(0) }
    }
}

fn accept(listener: TcpListener, proxy: PathBuf, forward: Option<u16>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let proxy = proxy.clone();
        std::thread::spawn(move || {
            let _ = carry(conn, &proxy, forward);
        });
    }
}

/// Carries one connection to the proxy; for a forwarded port, first asks
/// the proxy for a tunnel to the host's same loopback port.
fn carry(conn: TcpStream, proxy: &std::path::Path, forward: Option<u16>) -> std::io::Result<()> {
    let mut out = UnixStream::connect(proxy)?;
    if let Some(port) = forward {
        write!(
            out,
            "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            if out.read(&mut byte)? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let ok = head
            .split(|&b| b == b'\n')
            .next()
            .is_some_and(|line| line.windows(5).any(|w| w == b" 200 "));
        if !ok {
            let _ = conn.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    let (mut conn_r, mut out_w) = (conn.try_clone()?, out.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut conn_r, &mut out_w);
        let _ = out_w.shutdown(Shutdown::Write);
    });
    let mut conn_w = conn;
    let _ = std::io::copy(&mut out, &mut conn_w);
    let _ = conn_w.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// `ifreq` as `SIOCGIFFLAGS`/`SIOCSIFFLAGS` use it.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Brings up `lo`, which a new network namespace starts with down.
fn loopback_up() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    for (i, b) in b"lo".iter().enumerate() {
        req.name[i] = *b as libc::c_char;
    }
    // SAFETY: ioctl with an ifreq-sized buffer it reads and writes.
    let got = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) };
    req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above.
    let set = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our socket.
    unsafe { libc::close(fd) };
    if got < 0 || set < 0 {
        return Err(format!("bringing up the sandbox's loopback: {err}"));
    }
    Ok(())
}
