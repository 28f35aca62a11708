//! `omk doctor`: what omk needs, and whether it is there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::git::Repo;
use crate::store::{self, Store};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(dir: &Path, _args: Args) -> Result<u8> {
    let mut ok = true;
    match crate::git::version() {
        Some(v) => println!("git:        {v}"),
        None => {
            ok = false;
            println!("git:        NOT FOUND — install git ≥ 2.40 (omk needs `git merge-tree --write-tree --merge-base`)");
        }
    }
    println!("state home: {}", store::home()?.display());
    match Repo::discover(dir) {
        Ok(repo) => {
            let store = Store::for_repo(&repo)?;
            println!("repository: {}", repo.root.display());
            println!("state dir:  {}", store.root().display());
            let pool = crate::pool::Pool::new(store.pool_dir());
            let usage = pool.usage();
            let on_disk = usage.total();
            let ((slots, _), (keys, kept), (caches, fetched), (_, warm)) =
                (usage.slots, usage.setups, usage.downloads, usage.warm);
            println!(
                "pool:       {slots} slot{} ({} idle), {} in all; setup outputs kept for {keys} key{}, {}; download caches of {caches} setup{}, {}; warm build state {} (`omk goal clean` frees what is idle)",
                if slots == 1 { "" } else { "s" },
                pool.idle_slots().len(),
                crate::words::human_bytes(on_disk),
                if keys == 1 { "" } else { "s" },
                crate::words::human_bytes(kept),
                if caches == 1 { "" } else { "s" },
                crate::words::human_bytes(fetched),
                crate::words::human_bytes(warm),
            );
            let max = crate::config::Config::load(&repo.root)
                .ok()
                .and_then(|c| c.pool_max_disk);
            println!(
                "max disk:   {} ({}); idle slots' build state past it is freed when a goal ends",
                crate::words::human_bytes(pool.bound(max, on_disk)),
                match max {
                    Some(_) => "[pool] max_disk",
                    None => "half of what the pool takes and the free space: set [pool] max_disk",
                }
            );
            let orphans = orphans(&repo, &store)?;
            if orphans.is_empty() {
                println!("orphans:    none");
            } else {
                println!(
                    "orphans:    {} left by goals whose state is gone; remove them with:",
                    orphans.len()
                );
                for o in orphans {
                    println!("            {o}");
                }
            }
        }
        Err(_) => {
            println!("repository: none here (run omk inside a git repository or pass -C DIR)")
        }
    }
    println!("delivery:   {}", crate::deliver::describe_github());
    // The repository's omk.toml, as its HEAD has it.
    let config = Repo::discover(dir).ok().and_then(|repo| {
        let head = repo.resolve_commit("HEAD").ok()?;
        crate::config::Config::at_commit(&repo, &head).ok()
    });
    let slurm = config.clone().and_then(|config| match config.executor {
        crate::executor::Executor::Slurm(settings) => Some(settings),
        crate::executor::Executor::Local => None,
    });
    println!(
        "slurm:      {}",
        crate::executor::slurm::describe(slurm.as_ref())
    );
    let support = crate::sandbox::support();
    match support.landlock {
        Some(abi) => println!("sandbox:    Landlock ABI {abi}: agents and gates may write only their tree, temp dir, build caches and state dirs"),
        None => println!("sandbox:    Landlock is NOT available on this kernel: agents and gates run unconfined (detection only; --require-sandbox refuses)"),
    }
    match &support.namespaces {
        Ok(()) => println!("            namespaces: each agent and gate sees only its own processes and six devices; nothing it starts outlives it"),
        Err(why) => println!("            user namespaces are NOT available ({why}): agents and gates see omk's processes and every device, the host's sockets and omk's network (--require-sandbox refuses)"),
    }
    if support.namespaces.is_ok() {
        for line in sandbox_view(config.as_ref()) {
            println!("            {line}");
        }
    }
    let secrets = crate::redact::secret_names();
    match secrets.is_empty() {
        true => println!("secrets:    none of omk's environment variables is treated as a secret"),
        false => println!(
            "secrets:    scrubbed from agents' and gates' output: {}",
            secrets.join(", ")
        ),
    }
    println!("agents:     exec:<command> and acp:<command> need only their command");
    for line in kimi_report() {
        println!("{line}");
    }
    Ok(if ok { 0 } else { 3 })
}

/// What the sandbox hides, what it lets agents and gates read, reach and
/// see, for this repository's `omk.toml`.
fn sandbox_view(config: Option<&crate::config::Config>) -> Vec<String> {
    let mut hidden: Vec<String> = ["/tmp", "/var/tmp", "/run", "/root", "/home"]
        .map(String::from)
        .to_vec();
    for h in crate::sandbox::view::homes() {
        let h = h.display().to_string();
        if !hidden
            .iter()
            .any(|d| h == *d || h.starts_with(&format!("{d}/")))
        {
            hidden.push(h);
        }
    }
    let mut lines = vec![format!(
        "hidden: {} (private and empty; /tmp, /var/tmp and $HOME writable), the checkout, omk's state, and every host socket still in sight",
        hidden.join(", ")
    )];
    let toolchains: Vec<String> = crate::sandbox::view::homes()
        .iter()
        .flat_map(|h| {
            crate::sandbox::view::TOOLCHAIN_DIRS
                .iter()
                .map(move |d| h.join(d))
        })
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    let readable = config
        .map(|c| c.sandbox_readable.clone())
        .unwrap_or_default();
    lines.push(format!(
        "readable: the repository's git directory, PATH's directories, the agent's own program{}{}",
        match toolchains.is_empty() {
            true => String::new(),
            false => format!(", {}", toolchains.join(", ")),
        },
        match readable.is_empty() {
            true => String::new(),
            false => format!(", and [sandbox] readable: {}", readable.join(", ")),
        }
    ));
    let network = config.map(|c| c.network.clone()).unwrap_or_default();
    lines.push(match network.open {
        true => "network: open ([sandbox] network = \"open\"): omk's own, its loopback services included".into(),
        false => {
            let allowed = match network.allow.is_empty() {
                true => "no host".to_string(),
                false => network.allow.names().join(", "),
            };
            let model = crate::agent::AgentSpec::KimiWire.model_hosts().names().join(", ");
            format!("network: their own, out only through omk's proxy to {allowed} ([sandbox] allow_hosts, --allow-host); a Kimi agent also to {model}")
        }
    });
    let env = config.map(|c| c.sandbox_env.clone()).unwrap_or_default();
    let withheld = crate::sandbox::env::withheld(std::env::vars(), &env);
    let tools = crate::sandbox::env::tool_settings(&withheld);
    if !tools.is_empty() {
        lines.push(format!(
            "tool settings not passed on (name one in [sandbox] env to pass it): {}",
            tools.join(", ")
        ));
    }
    let others: Vec<String> = withheld
        .into_iter()
        .filter(|n| !tools.contains(n))
        .collect();
    if !others.is_empty() {
        lines.push(format!(
            "other variables not passed on: {}",
            others.join(", ")
        ));
    }
    lines
}

/// Branches omk made for goals whose state no longer exists, as the
/// commands that remove them. (Worktrees are pool slots, shared by goals.)
fn orphans(repo: &Repo, store: &Store) -> Result<Vec<String>> {
    let goals: std::collections::HashSet<String> = store.goal_ids()?.into_iter().collect();
    let mut found = Vec::new();
    for worktree in store.stray_planning_worktrees() {
        found.push(format!(
            "git -C {} worktree remove --force {}",
            repo.root.display(),
            worktree.display()
        ));
    }
    for branch in repo.branches_under(crate::git::conventions::NAMESPACE)? {
        let id = crate::git::conventions::goal_of(&branch).unwrap_or_default();
        if !goals.contains(id) {
            found.push(format!("git -C {} branch -D {branch}", repo.root.display()));
        }
    }
    Ok(found)
}

/// Which Kimi CLI is installed, and so which `--agent kimi…` specs will work.
fn kimi_report() -> Vec<String> {
    let bin = crate::agent::kimi_bin();
    let Some(path) = which(&bin) else {
        return vec![
            format!("kimi:       NOT FOUND (`{bin}` is not on PATH; set OMK_KIMI_BIN to use another binary)"),
            "            install the Kimi Code CLI: `npm install -g @moonshot-ai/kimi-code` (node ≥ 22.19) — for --agent kimi".into(),
            "            or the Python CLI: `pip install kimi-cli==1.51.0` (Python ≥ 3.12) — for kimi, kimi-wire and kimi-print".into(),
        ];
    };
    let out = Command::new(&path).arg("--version").output();
    let text = out
        .as_ref()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    let version = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    let mut lines = vec![format!("kimi:       {} ({version})", path.display())];
    if text.contains("kimi, version") {
        lines.push("            the Python Kimi CLI: --agent kimi (ACP), kimi-wire and kimi-print all work".into());
        let share = std::env::var_os("KIMI_SHARE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kimi")));
        if let Some(share) = share {
            if !share.join("credentials/kimi-code.json").exists() {
                lines.push(format!(
                    "            note: no login token in {}; its ACP server refuses sessions until you run `kimi login`",
                    share.join("credentials").display()
                ));
            }
        }
    } else if text.to_lowercase().contains("deprecat") {
        lines.push("            this kimi-cli release is a stub that only prints a deprecation notice: pin `pip install kimi-cli==1.51.0`, or install the Kimi Code CLI".into());
    } else if version.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        lines.push("            the Kimi Code CLI: --agent kimi (ACP) works; kimi-wire and kimi-print need the Python CLI (`pip install kimi-cli==1.51.0`)".into());
    } else {
        lines.push("            unrecognised version output; --agent kimi needs a CLI that speaks ACP (`kimi acp`)".into());
    }
    lines
}

fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        let p = PathBuf::from(bin);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}
