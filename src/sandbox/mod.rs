//! The sandbox every agent and gate runs in.
//!
//! An agent runs arbitrary commands, and a gate runs code the agent wrote, so
//! both get the same confinement ([`Confinement`]), applied by the kernel:
//! - **Landlock**: the process may read anything but write only below its
//!   tree, its private temp directory, the slot's build caches, the agent
//!   backends' state dirs and what `[sandbox] writable` (or a gate's
//!   `writable`) adds. The user's checkout, the repository's `.git` (hooks,
//!   config, refs), other slots and omk's state are refused. It cannot make
//!   device nodes, and cannot signal processes outside its sandbox.
//! - **Namespaces** ([`jail`]): its own pid namespace, with a `/proc` that
//!   shows only its own processes (omk's and other slices' environments,
//!   memory and command lines are out of sight), a `/dev` with only
//!   `null`, `zero`, `full`, `random`, `urandom`, `tty` and a private `shm`
//!   and `pts`, and no capabilities. When the command exits, every process
//!   it left behind is killed by the kernel, daemons included.
//!
//! - **A view of its own** ([`view`]): `/tmp`, `/var/tmp`, `/run`, the
//!   homes, the user's checkout and omk's state are hidden under private
//!   mounts; its tree, the repository's git directory, toolchains and its
//!   own program come back. No pathname socket of the host stays in sight.
//! - **A network of its own** ([`egress`]): only its own loopback; out
//!   only through omk's proxy ([`proxy`]), to the hosts its
//!   [`egress::AllowList`] names; what is refused is recorded. `[sandbox]
//!   network = "open"` keeps omk's own network instead, on purpose.
//! - **The environment by name** ([`env`]): never by prefix.
//!
//! omk runs each confined process through its own binary (`omk __sandbox
//! …`), which sets this up and then runs the command. Where the kernel
//! lacks Landlock or user namespaces, omk says so once, `doctor` shows it,
//! and `--require-sandbox` refuses to run.

pub mod denied;
pub mod egress;
pub mod env;
mod forward;
pub mod jail;
mod mounts;
pub mod proxy;
mod sys;
pub mod view;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use landlock::{
    Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope, ABI,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The Landlock ABI omk asks for; older kernels get what they support.
const WANTED: ABI = ABI::V6;

/// The argument that makes the `omk` binary act as the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox";

/// What the kernel offers this process for confining others.
#[derive(Debug, Clone)]
pub struct Support {
    /// The Landlock ABI version, `None` without Landlock (or `OMK_LANDLOCK=0`).
    pub landlock: Option<i64>,
    /// Whether user, mount and pid namespaces can be made; `Err` says why not.
    pub namespaces: std::result::Result<(), String>,
}

impl Support {
    /// Whether agents and gates are fully confined.
    pub fn complete(&self) -> bool {
        self.landlock.is_some() && self.namespaces.is_ok()
    }

    /// What is missing, in words, when something is.
    pub fn missing(&self) -> Option<String> {
        let mut missing = Vec::new();
        if self.landlock.is_none() {
            missing
                .push("no Landlock (agents and gates could write outside their tree)".to_string());
        }
        if let Err(why) = &self.namespaces {
            missing.push(format!(
                "no user namespaces ({why}): agents and gates could read omk's environment \
                 through /proc, see every device, and leave processes running"
            ));
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

/// What this kernel offers, found out once per process.
pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        // Without the helper (a test binary of the library's own) nothing
        // can be confined.
        if let Err(why) = probe(false) {
            return Support {
                landlock: None,
                namespaces: Err(why),
            };
        }
        let namespaces = if std::env::var("OMK_USERNS").is_ok_and(|v| v == "0") {
            Err("turned off by OMK_USERNS=0".into())
        } else {
            probe(true)
        };
        Support {
            landlock: abi(),
            namespaces,
        }
    })
}

/// The Landlock ABI version the kernel supports, `None` when it has none (or
/// `OMK_LANDLOCK=0` says to act as if).
fn abi() -> Option<i64> {
    if std::env::var("OMK_LANDLOCK").is_ok_and(|v| v == "0") {
        return None;
    }
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    (v > 0).then_some(v)
}

/// Runs a trivial command through the helper, in namespaces or not, to
/// see that it works.
fn probe(namespaces: bool) -> std::result::Result<(), String> {
    const SAID: &str = "omk-sandbox-ok";
    let plan = Plan {
        writable: vec![],
        landlock: false,
        namespaces,
        view: vec![],
        net: None,
    };
    let mut command = std::process::Command::new(helper().map_err(|e| e.to_string())?);
    command
        .arg(HELPER_ARG)
        .arg(plan.to_arg())
        .args([
            "--",
            "sh",
            "-c",
            &format!("test -c /dev/null && echo {SAID}"),
        ])
        .stdin(std::process::Stdio::null());
    match command.output() {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == SAID => {
            Ok(())
        }
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            let why = said.trim().trim_start_matches("omk sandbox: ");
            Err(match why.is_empty() {
                true => "the probe failed".to_string(),
                false => why.to_string(),
            })
        }
        Err(e) => Err(format!("starting the sandbox helper: {e}")),
    }
}

/// The `omk` binary, which is also the sandbox helper: the running one,
/// through `/proc/self/exe`, so an omk installed over it (or a rebuilt
/// one) while a goal runs does not make every later agent and gate fail to
/// start; its path where there is no `/proc`.
fn helper() -> Result<PathBuf> {
    let running = PathBuf::from("/proc/self/exe");
    if running.exists() {
        return Ok(running);
    }
    std::env::current_exe().map_err(|e| Error::io("finding omk's own binary", e))
}

/// What the helper is told to set up (passed as one JSON argument).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Paths the command may write below.
    pub writable: Vec<PathBuf>,
    /// Whether to apply Landlock.
    pub landlock: bool,
    /// Whether to make namespaces.
    pub namespaces: bool,
    /// How to build the file system view (with namespaces).
    #[serde(default)]
    pub view: Vec<view::Step>,
    /// The isolated network, when it has one (with namespaces).
    #[serde(default)]
    pub net: Option<NetPlan>,
}

/// A confined process's own network: out only through the proxy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetPlan {
    /// The directory of the proxy's socket.
    pub proxy_dir: PathBuf,
    /// Host loopback ports forwarded in at the same address.
    pub forwards: Vec<u16>,
}

impl Plan {
    fn to_arg(&self) -> String {
        serde_json::to_string(self).expect("a plan always serializes")
    }
}

/// How one agent or gate process is confined: where it may write, what
/// else it may read, and where it may connect.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Directories it may write below (created if missing), besides the
    /// device nodes every confined process gets.
    pub writable: Vec<PathBuf>,
    /// Paths it may read that the view hides otherwise (`[sandbox] readable`).
    pub readable: Vec<PathBuf>,
    /// Programs it runs (command words), whose install directories it reads.
    pub programs: Vec<String>,
    /// Directories it works in but may not change (a reviewer's checkout):
    /// writable at the mount, for tools that check, but never by Landlock.
    pub shown: Vec<PathBuf>,
    /// Its network.
    pub network: Network,
}

/// The network of a confined process.
#[derive(Debug, Clone)]
pub enum Network {
    /// Its own namespace, out through omk's proxy (shared by the clones of
    /// one [`Confinement`], so an attempt's refusals are counted together).
    Proxied(Arc<proxy::Egress>),
    /// omk's own network (`[sandbox] network = "open"`).
    Open,
}

impl Default for Network {
    fn default() -> Self {
        Network::proxied(egress::AllowList::default())
    }
}

impl Network {
    /// Out only to the hosts `allow` names.
    pub fn proxied(allow: egress::AllowList) -> Network {
        Network::Proxied(Arc::new(proxy::Egress::new(allow)))
    }

    /// The network `settings` call for, with `extra` hosts allowed besides.
    pub fn of(settings: &NetworkSettings, extra: &egress::AllowList) -> Network {
        match settings.open {
            true => Network::Open,
            false => Network::proxied(settings.allow.with(extra)),
        }
    }
}

/// What `omk.toml` and the command line say of the network, recorded with
/// the goal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSettings {
    /// `[sandbox] network = "open"`: omk's own network, on purpose.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
    /// `[sandbox] allow_hosts` and `--allow-host`: for agents and gates.
    #[serde(default, skip_serializing_if = "egress::AllowList::is_empty")]
    pub allow: egress::AllowList,
}

impl NetworkSettings {
    /// Whether nothing was configured: isolated, no host allowed.
    pub fn is_default(&self) -> bool {
        *self == NetworkSettings::default()
    }
}

impl Confinement {
    /// Confinement that lets a process write below `writable`, reach no
    /// host, and read nothing hidden besides what every process needs.
    pub fn new(writable: Vec<PathBuf>) -> Confinement {
        Confinement {
            writable,
            ..Confinement::default()
        }
    }

    /// The same, also reading `readable`.
    pub fn reading(mut self, readable: impl IntoIterator<Item = PathBuf>) -> Confinement {
        self.readable.extend(readable);
        self
    }

    /// The same, working in `dir`, which it may read but not change.
    pub fn working_in(mut self, dir: PathBuf) -> Confinement {
        self.shown.push(dir);
        self
    }

    /// The same, for running the shell command `command` (the programs it
    /// names stay readable).
    pub fn running(mut self, command: &str) -> Confinement {
        self.programs.extend(view::command_programs(command));
        self
    }

    /// The same, with `network`.
    pub fn on(mut self, network: Network) -> Confinement {
        self.network = network;
        self
    }

    /// What this process's network was, and what it was refused.
    pub fn network_record(&self) -> egress::NetworkRecord {
        match (&self.network, support().namespaces.is_ok()) {
            (Network::Proxied(egress), true) => egress.record(),
            _ => egress::NetworkRecord::open(),
        }
    }

    /// A command that runs `program` confined, as far as this kernel allows:
    /// arguments, environment, working directory and stdio set on it apply
    /// to `program`. Without Landlock or namespaces, `program` runs as is.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Result<tokio::process::Command> {
        let support = support();
        if support.landlock.is_none() && support.namespaces.is_err() {
            return Ok(tokio::process::Command::new(program));
        }
        let writable: Vec<PathBuf> = self
            .writable
            .iter()
            .filter(|p| std::fs::create_dir_all(p).is_ok() || p.exists())
            .cloned()
            .collect();
        let namespaces = support.namespaces.is_ok();
        let (view, net) = match namespaces {
            false => (vec![], None),
            true => {
                let mut programs = self.programs.clone();
                programs.push(program.as_ref().to_string_lossy().into_owned());
                let path = std::env::var("PATH").ok();
                let view = view::steps(
                    &writable,
                    &self.readable,
                    &self.shown,
                    &programs,
                    path.as_deref(),
                );
                let net = match &self.network {
                    Network::Open => None,
                    Network::Proxied(egress) => Some(NetPlan {
                        proxy_dir: egress.socket_dir()?,
                        forwards: egress.allow().loopback_ports(),
                    }),
                };
                (view, net)
            }
        };
        let plan = Plan {
            writable,
            landlock: support.landlock.is_some(),
            namespaces,
            view,
            net,
        };
        tracing::debug!(
            program = %program.as_ref().to_string_lossy(),
            view_steps = plan.view.len(),
            network = if plan.net.is_some() { "proxied" } else { "open" },
            "confined"
        );
        let mut command = tokio::process::Command::new(helper()?);
        command
            .arg(HELPER_ARG)
            .arg(plan.to_arg())
            .arg("--")
            .arg(program);
        Ok(command)
    }
}

/// The Landlock rules of a confined process: read everything; write below
/// `writable`; use the device nodes (and, with a `/dev` of its own, its
/// private `shm` and `pts`); signal nothing outside the sandbox.
pub(crate) fn landlock_rules(
    writable: &[PathBuf],
    private_dev: bool,
) -> std::result::Result<RulesetCreated, String> {
    let fail = |e: &dyn std::fmt::Display| format!("building the Landlock rules: {e}");
    // Device nodes are made by nobody: a root agent could make a block device
    // in its tree and write the disk through it.
    let write = AccessFs::from_all(WANTED) & !(AccessFs::MakeBlock | AccessFs::MakeChar);
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(WANTED))
        .map_err(|e| fail(&e))?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)
        .map_err(|e| fail(&e))?
        .create()
        .map_err(|e| fail(&e))?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| fail(&e))?,
            AccessFs::from_read(WANTED),
        ))
        .map_err(|e| fail(&e))?;
    let mut dirs: Vec<PathBuf> = writable.to_vec();
    if private_dev {
        dirs.extend(["/dev/shm", "/dev/pts"].map(PathBuf::from));
    }
    // A directory that is not there (or went away meanwhile) needs no rule:
    // nothing can be written beneath it.
    for fd in dirs.iter().filter_map(|dir| PathFd::new(dir).ok()) {
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, write))
            .map_err(|e| fail(&e))?;
    }
    for name in mounts::DEVICES {
        let node = Path::new("/dev").join(name);
        if let Ok(fd) = PathFd::new(&node) {
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, AccessFs::from_file(WANTED)))
                .map_err(|e| fail(&e))?;
        }
    }
    Ok(ruleset)
}

/// The writable directories for an agent besides its worktree and temp dir:
/// the Kimi CLIs' state dirs (created for the Kimi backends, which need
/// them; kept for other agents only when they exist) and `extra`, created.
pub fn writable_dirs(kimi: bool, extra: &[String]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for d in agent_state_dirs() {
        if kimi {
            let _ = std::fs::create_dir_all(&d);
        }
        if d.exists() {
            dirs.push(d);
        }
    }
    dirs.extend(extra_dirs(extra));
    dirs
}

/// Configured writable directories (`[sandbox] writable`, a gate's
/// `writable`), `~/` expanded and created.
pub fn extra_dirs(extra: &[String]) -> Vec<PathBuf> {
    extra
        .iter()
        .map(|e| {
            let d = expand_home(e);
            let _ = std::fs::create_dir_all(&d);
            d
        })
        .collect()
}

/// Configured readable paths (`[sandbox] readable`), `~/` expanded.
pub fn readable_dirs(paths: &[String]) -> Vec<PathBuf> {
    paths.iter().map(|p| expand_home(p)).collect()
}

/// Directories an agent backend keeps its own state in, which stay writable.
pub fn agent_state_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    [
        var("KIMI_SHARE_DIR").or_else(|| home.as_ref().map(|h| h.join(".kimi"))),
        var("KIMI_CODE_HOME").or_else(|| home.as_ref().map(|h| h.join(".kimi-code"))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Expands a leading `~/` in a configured path.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Keeps processes running as omk's own user from reading omk's memory and
/// environment through `/proc` (and from attaching to it), where no pid
/// namespace hides it. Called once at start; children are not affected.
pub fn protect_self() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}
