//! What confining one process costs: the time from spawning a command to
//! its exit, for `true`, run
//! - plainly (the baseline, measured in the same run);
//! - through the sandbox helper with namespaces and Landlock only (what a
//!   sandboxed spawn was before the view and the network: ~3.5 ms);
//! - with the private view (hidden homes, temp and runtime dirs, the
//!   checkout and omk's state; toolchains and PATH bound back; host sockets
//!   covered);
//! - with the view and a network of its own (loopback up, the forwarder
//!   started, the proxy's directory held).
//!
//! Prints milliseconds per spawn and the ratio to the plain spawn. Run with
//! `cargo bench --bench sandbox`; `OMK_BENCH_SPAWNS` sets the count.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn spawns(n: usize, mut make: impl FnMut() -> Command) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let status = make()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("spawning");
        assert!(status.success(), "a spawn failed");
    }
    started.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("OMK_BENCH_SPAWNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let omk = env!("CARGO_BIN_EXE_omk");
    let scratch = tempfile::tempdir().unwrap();
    let tree: PathBuf = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    // A proxy directory with a socket in it: the helper only holds it; no
    // connection is made.
    let proxy = scratch.path().join("proxy");
    std::fs::create_dir_all(&proxy).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(proxy.join("proxy.sock")).unwrap();
    let path = std::env::var("PATH").ok();
    let view = omk::sandbox::view::steps(
        std::slice::from_ref(&tree),
        &[],
        &[],
        &["true".to_string()],
        path.as_deref(),
    );
    let make_plan = |with_view: bool, net: bool| {
        serde_json::json!({
            "writable": [tree],
            "landlock": true,
            "namespaces": true,
            "view": if with_view { serde_json::to_value(&view).unwrap() } else { serde_json::json!([]) },
            "net": if net { serde_json::json!({"proxy_dir": proxy, "forwards": []}) } else { serde_json::Value::Null },
        })
        .to_string()
    };
    let confined = |plan: String| {
        move || {
            let mut c = Command::new(omk);
            c.args(["__sandbox", &plan, "--", "true"]);
            c
        }
    };
    // Warm the page cache and the helper's first start.
    spawns(5, confined(make_plan(true, true)));
    let plain = spawns(n, || Command::new("true"));
    let rows = [
        ("namespaces and Landlock", make_plan(false, false)),
        ("+ private view", make_plan(true, false)),
        ("+ private view and network", make_plan(true, true)),
    ];
    println!(
        "sandbox: {n} spawns of `true` each; {} view steps",
        view.len()
    );
    println!("sandbox: plain spawn                      {plain:>6.2} ms   1.00x");
    for (name, plan) in rows {
        let ms = spawns(n, confined(plan));
        println!("sandbox: {name:<32} {ms:>6.2} ms   {:.2}x", ms / plain);
    }
}
