//! The secret scrubber on an 8 MB agent log with 20 secrets from the
//! environment and a few key-shaped strings, against copying the same bytes
//! (the floor for any pass over the log), measured in the same run.
//!
//! Run with `cargo bench --bench redact`.

use std::time::Instant;

use omk::redact::Redactor;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secrets: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("SERVICE_{i}_TOKEN"),
                format!("tok-{i:02}-{}", "q7".repeat(12)),
            )
        })
        .collect();
    let mut log = String::with_capacity(8 << 20);
    let mut n = 0usize;
    while log.len() < 8 << 20 {
        n += 1;
        log.push_str(&format!(
            "{n:08} step: ran `cargo test` in /work/repo, 12 passed; 0 failed; took 1.{n}s\n"
        ));
        if n % 500 == 0 {
            log.push_str(&format!("auth header: Bearer {}\n", secrets[n % 20].1));
        }
        if n % 2000 == 0 {
            log.push_str("leaked sk-abcdefghijklmnopqrstuvwxyz012345 by a tool\n");
        }
    }
    let redactor = Redactor::new(&secrets);
    let best = |f: &mut dyn FnMut() -> usize| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let k = f();
                (t.elapsed(), k)
            })
            .min()
            .unwrap()
    };
    let (copy, _) =
        best(&mut || std::hint::black_box(std::hint::black_box(log.as_bytes()).to_vec()).len());
    let (scrub, len) =
        best(&mut || std::hint::black_box(redactor.redact(std::hint::black_box(&log))).len());
    let clean = redactor.redact(&log);
    assert!(
        !secrets.iter().any(|(_, v)| clean.contains(v.as_str()))
            && !clean.contains("sk-abcdefghij")
    );
    let mb = log.len() as f64 / 1e6;
    println!(
        "redact: {mb:.1} MB log, 20 secrets   copy {:.2} ms   scrub {:.2} ms ({:.0} MB/s, {len} bytes out)   ratio {:.1}x",
        copy.as_secs_f64() * 1e3,
        scrub.as_secs_f64() * 1e3,
        mb / scrub.as_secs_f64(),
        scrub.as_secs_f64() / copy.as_secs_f64()
    );
}
