//! The sandbox helper: the process omk starts in place of every agent and
//! gate, which confines itself and then runs the real command.
//!
//! omk runs `omk __sandbox <plan> -- <program> <args…>` (see
//! [`super::Confinement::command`]). This runs before anything else in that
//! process, while it has one thread, which `unshare(CLONE_NEWUSER)` needs:
//!
//! ```text
//!  omk ──spawns──▶ monitor (omk's child, session leader; waits, relays the exit)
//!                     │ unshare(user, mount, pid, ipc), fork
//!                     ▼
//!                   init (pid 1 of the new pid namespace)
//!                     │ private mounts: /proc of its own, a /dev of six nodes,
//!                     │ a private /dev/shm and /dev/pts; Landlock; no capabilities
//!                     │ fork
//!                     ▼
//!                   the command (and everything it starts)
//! ```
//!
//! When the command exits, init kills every other process of the namespace
//! — double-forked daemons, `setsid` children, ones that cleared their
//! environment — before it reaps the command, so none can see it gone and
//! act after it; then init exits, and the kernel ends the namespace before
//! the monitor sees init end. So
//! when omk sees the exit, nothing the command started is alive. Inside,
//! only the namespace's processes exist: omk and other slices' processes
//! cannot be seen, read through `/proc` or signalled.
//!
//! Init also builds the file system view the plan describes (see
//! [`super::view`]): private mounts over the host's temp and runtime
//! directories, homes, the user's checkout and omk's state, with what the
//! command needs bound back, and every host socket still in sight covered.
//! With an isolated network, the namespaces include a network namespace:
//! init brings its loopback up and starts the forwarder
//! ([`super::forward`]) before it confines itself, so the command can
//! neither signal nor trace it; the command finds the proxy in
//! `HTTP_PROXY` and friends.
//!
//! Without namespaces (the plan says so) the helper applies Landlock and
//! runs the command in its own place.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::mounts::{build_view, cover_sockets, host_sockets, mount_view};
use super::sys::{check, write_file};
use super::Plan;

/// The exit code when the sandbox itself could not be set up.
pub const SETUP_FAILED: i32 = 125;

/// Runs the helper with the arguments after `__sandbox`; never returns.
pub fn main(args: Vec<OsString>) -> ! {
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("omk sandbox: {e}");
            SETUP_FAILED
        }
    };
    std::process::exit(code)
}

fn run(args: Vec<OsString>) -> Result<i32, String> {
    let mut args = args.into_iter();
    let plan = args.next().ok_or("no plan given")?;
    let plan: Plan = serde_json::from_slice(plan.as_bytes()).map_err(|e| format!("plan: {e}"))?;
    if args.next().is_none_or(|sep| sep != "--") {
        return Err("expected `--` after the plan".into());
    }
    let argv: Vec<CString> = args
        .map(|a| CString::new(a.as_bytes()).map_err(|_| "a NUL byte in an argument".to_string()))
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        return Err("no command given".into());
    }
    if !plan.namespaces {
        restrict_files(&plan, false)?;
        drop_capabilities()?;
        return Err(exec(&argv));
    }
    // Which pathname sockets the host has bound, read while this process
    // is still in the host's network namespace (`/proc/net` shows its own).
    let sockets = match plan.view.is_empty() {
        true => vec![],
        false => host_sockets(),
    };
    enter_namespaces(plan.net.is_some())?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors.
    check(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        "pipe2",
    )?;
    let (status_r, status_w) = (fds[0], fds[1]);
    // SAFETY: this process has one thread; the child only continues below.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            // SAFETY: closing our copy of the read end.
            unsafe { libc::close(status_r) };
            let code = match init(&plan, &argv, status_w, &sockets) {
                Ok(never) => match never {},
                Err(e) => {
                    eprintln!("omk sandbox: {e}");
                    SETUP_FAILED
                }
            };
            // SAFETY: leaving the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        init_pid => {
            // SAFETY: closing our copy of the write end.
            unsafe { libc::close(status_w) };
            Ok(monitor(init_pid, status_r))
        }
    }
}

/// Waits for init and ends the way the command ended.
fn monitor(init_pid: libc::pid_t, status_r: libc::c_int) -> i32 {
    // omk stops a confined process by signalling its process group: the
    // command gets the signal itself; the monitor stays to report.
    ignore_stop_signals();
    detach_stdio();
    let init_status = wait_for(init_pid);
    let mut buf = [0u8; 4];
    // SAFETY: reading at most four bytes into `buf`.
    let n = unsafe { libc::read(status_r, buf.as_mut_ptr().cast(), 4) };
    let status = if n == 4 {
        i32::from_ne_bytes(buf)
    } else {
        init_status
    };
    end_like(status)
}

/// pid 1 of the namespace: sets up the view, starts the command, reaps
/// until it exits, and passes its wait status on.
fn init(
    plan: &Plan,
    argv: &[CString],
    status_w: libc::c_int,
    sockets: &[std::path::PathBuf],
) -> Result<std::convert::Infallible, String> {
    // If the monitor is killed, so is init, and with it the namespace.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    mount_view(plan.landlock)?;
    // The proxy's directory, held before the view hides it.
    let proxy_dir = match &plan.net {
        Some(net) => Some(open_dir(&net.proxy_dir)?),
        None => None,
    };
    let scratch = build_view(&plan.view)?;
    cover_sockets(sockets)?;
    let proxy_port = match (&plan.net, proxy_dir) {
        (Some(net), Some(dir)) => Some(start_forwarder(&net.forwards, dir)?),
        _ => None,
    };
    let mut writable = plan.writable.clone();
    writable.extend(scratch);
    restrict_files(
        &Plan {
            writable,
            ..plan.clone()
        },
        true,
    )?;
    ignore_stop_signals();
    // SAFETY: init has one thread; the child execs or exits.
    let child = unsafe { libc::fork() };
    if child == -1 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        restore_signals();
        if let Some(port) = proxy_port {
            set_proxy_env(port);
        }
        let e = match drop_capabilities() {
            Ok(()) => exec(argv),
            Err(e) => e,
        };
        eprintln!("omk sandbox: {e}");
        // SAFETY: leaving the child.
        unsafe { libc::_exit(127) }
    }
    detach_stdio();
    loop {
        // Look at the next ended process without reaping it: while the
        // command is a zombie, its pid still answers `kill -0`, so nothing
        // it left behind can see it gone and act "after" it.
        // SAFETY: a zeroed siginfo_t is valid; waitid writes it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes `info`.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == -1 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // SAFETY: leaving init; the kernel ends the namespace.
            unsafe { libc::_exit(SETUP_FAILED) }
        }
        // SAFETY: waitid with WEXITED filled in the child fields.
        let pid = unsafe { info.si_pid() };
        if pid == child {
            // Kill everything else in the namespace first, then reap.
            // SAFETY: kill(-1) from pid 1 signals every other process of the namespace.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: waitpid writes the status of a process that has ended.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if pid == child {
            let bytes = status.to_ne_bytes();
            // SAFETY: writing four bytes from `bytes`.
            unsafe { libc::write(status_w, bytes.as_ptr().cast(), 4) };
            // SAFETY: init's exit ends the namespace and every process in it.
            unsafe { libc::_exit(0) }
        }
    }
}

/// New user, mount, pid and IPC namespaces, and with `network` a network
/// namespace, with this process's uid and gid mapped to themselves.
/// Without `network` the network is omk's own (`[sandbox] network = "open"`).
fn enter_namespaces(network: bool) -> Result<(), String> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut flags =
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare with flags only.
    check(
        unsafe { libc::unshare(flags) },
        "unshare(user, mount, pid, ipc, net)",
    )?;
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", &format!("{uid} {uid} 1\n"))?;
    write_file("/proc/self/gid_map", &format!("{gid} {gid} 1\n"))
}

/// Opens a directory by path, to reach what is in it after the view hides it.
fn open_dir(path: &Path) -> Result<libc::c_int, String> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("a NUL byte in {}", path.display()))?;
    // SAFETY: open with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    check(fd, &format!("opening {}", path.display()))?;
    Ok(fd)
}

/// Brings the namespace's loopback up, binds the proxy and forwarded ports,
/// and starts the forwarder process; returns the proxy's port.
fn start_forwarder(forwards: &[u16], proxy_dir: libc::c_int) -> Result<u16, String> {
    let listeners = super::forward::Listeners::bind(forwards)?;
    let port = listeners.proxy_port();
    // SAFETY: init has one thread; the child serves and never returns.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            detach_stdio();
            // SAFETY: prctl with integer arguments: nothing may read or
            // trace the forwarder.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            if drop_capabilities().is_err() {
                // SAFETY: leaving the child.
                unsafe { libc::_exit(SETUP_FAILED) }
            }
            let socket = format!("/proc/self/fd/{proxy_dir}/{}", super::proxy::SOCKET);
            listeners.serve(socket.into())
        }
        _ => {
            drop(listeners);
            // SAFETY: init's copy is not needed; the forwarder has its own.
            unsafe { libc::close(proxy_dir) };
            Ok(port)
        }
    }
}

/// Points the command's HTTP clients at the sandbox's proxy; its own
/// loopback stays direct.
fn set_proxy_env(port: u16) {
    let url = format!("http://127.0.0.1:{port}");
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        std::env::set_var(name, &url);
    }
    for name in ["NO_PROXY", "no_proxy"] {
        std::env::set_var(name, "localhost,127.0.0.1,::1");
    }
    std::env::set_var("NODE_USE_ENV_PROXY", "1");
}

/// Applies the plan's Landlock rules to this process and its descendants.
fn restrict_files(plan: &Plan, private_dev: bool) -> Result<(), String> {
    if !plan.landlock {
        // SAFETY: prctl with integer arguments.
        check(
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
            "no_new_privs",
        )?;
        return Ok(());
    }
    super::landlock_rules(&plan.writable, private_dev)?
        .restrict_self()
        .map_err(|e| format!("applying Landlock: {e}"))?;
    Ok(())
}

/// Empties the capability sets and the bounding set, so the command holds
/// no capability in the namespace even as uid 0 (it cannot unmount the
/// private `/proc` to find the host's under it).
fn drop_capabilities() -> Result<(), String> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: capset with a version-3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    check(r as libc::c_int, "dropping capabilities")
}

/// Replaces this process with the command; returns only the error.
fn exec(argv: &[CString]) -> String {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: a NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    format!(
        "running {}: {}",
        argv[0].to_string_lossy(),
        std::io::Error::last_os_error()
    )
}

/// Waits for `pid` and returns its wait status.
fn wait_for(pid: libc::pid_t) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return SETUP_FAILED << 8;
        }
    }
}

/// Exits with the code, or dies of the signal, that `status` describes.
fn end_like(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: restoring the default action and raising the signal; no
        // core file is written for it.
        unsafe {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        return 128 + sig;
    }
    libc::WEXITSTATUS(status)
}

const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn ignore_stop_signals() {
    for sig in STOP_SIGNALS {
        // SAFETY: setting a signal's disposition to ignore.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

/// Default dispositions and an empty mask for the command, as any process
/// omk starts would have.
fn restore_signals() {
    for sig in STOP_SIGNALS {
        // SAFETY: restoring a signal's default disposition.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Points stdin, stdout and stderr at `/dev/null`, so the command's pipes
/// close when the command closes them.
fn detach_stdio() {
    let null = c"/dev/null";
    // SAFETY: open and dup2 on descriptors this process owns.
    unsafe {
        let fd = libc::open(null.as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for target in 0..3 {
                libc::dup2(fd, target);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}
