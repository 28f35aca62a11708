//! A real single-node Slurm cluster on loopback for the executor tests:
//! Debian's `slurm-wlm` and `munge` (installed with `apt-get` when missing),
//! `munged` as the munge user, then `slurmctld` and `slurmd` with their
//! configuration, state and logs under the target directory, on ports of
//! their own. One cluster per test binary, stopped when it exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running cluster.
pub struct Cluster {
    /// Its `slurm.conf`: give it to omk and the Slurm commands as `SLURM_CONF`.
    pub conf: PathBuf,
    pub dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

impl Cluster {
    /// A Slurm command against this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// `(id, name)` of every job Slurm has pending or running.
    pub fn jobs(&self) -> Vec<(String, String)> {
        let out = self
            .command("squeue")
            .args(["-h", "-o", "%i %j"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect()
    }
}

/// Whether `program` is installed: the daemons in /usr/sbin, the commands on PATH.
fn have(program: &str) -> bool {
    Path::new("/usr/sbin").join(program).exists()
        || Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn start() -> Cluster {
    if !(have("slurmctld") && have("sbatch") && have("munged")) {
        let _ = Command::new("sh")
            .args([
                "-c",
                "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null",
            ])
            .status();
    }
    assert!(
        have("slurmctld") && have("slurmd") && have("munged"),
        "the Slurm tests need slurm-wlm and munge, and apt-get could not install them"
    );
    // SAFETY: reading the effective uid.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the Slurm tests start slurmd, which runs as root (as CI does)"
    );
    start_munge();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // What earlier test binaries' clusters left (their state and logs).
    for old in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("slurm-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
    }
    let dir = tmp.join(format!("slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["state", "spool", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let (ctld_port, d_port) = free_ports();
    let d = dir.display();
    let conf = dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=omktest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2000
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
KillWait=5
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=20000 State=UNKNOWN
PartitionName=omk Nodes={host} Default=YES MaxTime=INFINITE State=UP
"
        ),
    )
    .unwrap();
    for daemon in ["/usr/sbin/slurmctld", "/usr/sbin/slurmd"] {
        let ok = Command::new(daemon)
            .arg("-f")
            .arg(&conf)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "{daemon} did not start; see {}",
            dir.join("log").display()
        );
    }
    // SAFETY: registering a plain function to run at exit.
    unsafe { libc::atexit(stop) };
    let cluster = Cluster { conf, dir };
    let started = Instant::now();
    loop {
        let out = cluster
            .command("sinfo")
            .args(["-h", "-o", "%t"])
            .output()
            .unwrap();
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if state == "idle" {
            return cluster;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the Slurm node is `{state}`, not idle; see {}",
            cluster.dir.join("log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `munged` as the munge user, unless one answers already.
fn start_munge() {
    let works = || {
        Command::new("sh")
            .args(["-c", "munge -n | unmunge >/dev/null 2>&1"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if works() {
        return;
    }
    let ok = Command::new("sh")
        .args([
            "-c",
            "mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge \
             && { [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null \
             && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key; }; } \
             && runuser -u munge -- /usr/sbin/munged",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok && works(), "munged did not start");
}

/// Stops the cluster's daemons at exit (munged is left to the machine).
extern "C" fn stop() {
    if let Some(c) = CLUSTER.get() {
        for pid in ["slurmd.pid", "slurmctld.pid"] {
            if let Ok(pid) = std::fs::read_to_string(c.dir.join(pid)) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: signalling a daemon this test binary started.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }
    }
}

/// Two ports nothing listens on now (both held while chosen, so they differ).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}
