//! `goal report --html`: the page a real browser draws, read as pixels.

use std::time::Duration;

use crate::support::browser::screenshot;
use crate::support::{gate_toml, slice, Fixture};
use serde_json::json;

/// The colours of the report's bars (`src/report/html.rs`): waiting, agent,
/// commit, gate queued, gate, merge, failed.
const BARS: [[u8; 3]; 7] = [
    [0xd1, 0xd9, 0xe0],
    [0x21, 0x8b, 0xff],
    [0x82, 0x50, 0xdf],
    [0xf5, 0xd7, 0x7a],
    [0x2d, 0xa4, 0x4e],
    [0x1b, 0x7c, 0x83],
    [0xcf, 0x22, 0x2e],
];
const FAILED: [u8; 3] = [0xcf, 0x22, 0x2e];
/// Where the time axis lies in a screenshot: the page's margin plus the
/// names' column, and its width.
const CHART: std::ops::Range<usize> = 264..1264;
/// Bars are 14 pixels high; the legend's swatches 10.
const BAR_MIN_H: usize = 12;

fn report(f: &Fixture, name: &str) -> (std::path::PathBuf, String) {
    let path = f.tmp.path().join(name);
    let out = f.omk(&["goal", "report", "--html", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&path).unwrap();
    (path, html)
}

#[test]
fn the_html_report_draws_one_row_per_slice_with_its_retries_and_needs_no_network() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "test ! -e broken", "both"))]);
    // Slice `a` breaks its gate on the first attempt and repairs it on the
    // second; `b` passes at once.
    let agent = f.agent(
        r#"if [ "$OMK_SLICE_ID" = a ] && [ "$OMK_ATTEMPT" = 1 ]; then echo x > broken; else rm -f broken; fi
echo "$OMK_SLICE_ID $OMK_ATTEMPT" > "$OMK_SLICE_ID.txt""#,
    );
    let plan =
        f.plan(json!({ "slices": [slice("a", &["a.txt", "broken"]), slice("b", &["b.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["slices"][0]["attempts"], 2);

    let (page, html) = report(&f, "report.html");
    // Self-contained: nothing to fetch, nothing to run.
    for forbidden in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(forbidden), "the report has `{forbidden}`");
    }
    assert!(html.contains("default-src 'none'"), "no CSP in the report");
    // Every bar names itself on hover.
    assert!(
        html.contains("a · attempt 1 · gate check: exit 1"),
        "{html}"
    );
    assert!(html.contains("a · attempt 2 · agent"), "{html}");
    assert!(
        html.contains("attempt 2 at"),
        "no mark for the second attempt"
    );
    assert!(html.contains("integration branch advanced to"), "{html}");

    let (shot, _) = screenshot(&page, 1300, 700, Duration::from_secs(60));
    assert!(shot.inked() > 5_000, "the page looks blank");
    let rows = shot.bands(CHART, &BARS, BAR_MIN_H);
    // The base check, the two slices, the integration.
    assert_eq!(rows.len(), 4, "bands of bars drawn: {rows:?}");
    for pair in rows.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 20, "rows 20 px apart: {rows:?}");
    }
    // `a`'s row, the second, has its failed gate in red; `b`'s has none.
    let red_in =
        |(y, h): (usize, usize)| (y..y + h).any(|y| CHART.clone().any(|x| shot.at(x, y) == FAILED));
    assert!(red_in(rows[1]), "a's failed gate is not drawn red");
    assert!(!red_in(rows[2]), "b failed nothing");
}

/// A refused commit and a conflict are failures too: drawn red like a
/// failed gate, in the rows of the slices they happened to.
#[test]
fn a_refused_commit_and_a_conflict_are_drawn_red_like_a_failed_gate() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "true", "both")),
        ("shared.txt", "base\n"),
    ]);
    // `scoped` writes outside its scope on its first attempt; `x` and `y`
    // both rewrite `shared.txt`, so the one merged second conflicts once.
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  scoped) if [ "$OMK_ATTEMPT" = 1 ]; then echo no > outside.txt; else rm -f outside.txt; fi; echo ok > scoped.txt ;;
  *) printf 'from %s\n' "$OMK_SLICE_ID" > shared.txt ;;
esac"#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("scoped", &["scoped.txt"]),
        slice("x", &["shared.txt"]),
        slice("y", &["shared.txt"]),
    ]}));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3"]);
    assert_eq!(code, 0, "{stderr}");
    let attempts = |id: &str| {
        crate::support::slice_of(&proof, id)["attempts"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(attempts("scoped"), 2, "{proof:#}");
    let (winner, loser) = match (attempts("x"), attempts("y")) {
        (1, 2) => (2, 3),
        (2, 1) => (3, 2),
        other => panic!("one of x and y conflicts once: {other:?}\n{proof:#}"),
    };

    let (page, _) = report(&f, "failures.html");
    let (shot, _) = screenshot(&page, 1300, 700, Duration::from_secs(60));
    let rows = shot.bands(CHART, &BARS, BAR_MIN_H);
    // The base check, the three slices, the integration.
    assert_eq!(rows.len(), 5, "bands of bars drawn: {rows:?}");
    let red_in =
        |(y, h): (usize, usize)| (y..y + h).any(|y| CHART.clone().any(|x| shot.at(x, y) == FAILED));
    assert!(red_in(rows[1]), "the refused commit is not drawn red");
    assert!(red_in(rows[loser]), "the conflict is not drawn red");
    assert!(
        !red_in(rows[winner]),
        "the slice merged first failed nothing"
    );
}

#[test]
fn a_thousand_slice_report_renders_in_the_browser() {
    let f = Fixture::new(&[("README.md", "x\n")]);
    let slices: Vec<_> = (0..1000)
        .map(|i| slice(&format!("s{i:04}"), &[&format!("s{i:04}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    // Each agent takes a moment, so every row has a bar wide enough to see.
    let agent = f.agent(r#"sleep 1; echo x > "$OMK_SLICE_ID.txt""#);
    let (code, _, stderr) =
        f.run_goal(&plan, &agent, &["--allow-no-gates", "--concurrency", "100"]);
    assert_eq!(code, 0, "{stderr}");
    let (page, html) = report(&f, "big.html");
    assert_eq!(
        html.matches("<g class=\"row\"").count(),
        1001,
        "1,000 slices and the integration"
    );

    // The browser loads and draws it; the first screenful shows a row of
    // bars for every slice row it has room for.
    let (shot, took) = screenshot(&page, 1300, 1000, Duration::from_secs(120));
    let rows = shot.bands(CHART, &BARS, BAR_MIN_H);
    assert!(
        rows.len() >= 40,
        "{} rows of bars drawn: {rows:?}",
        rows.len()
    );
    for pair in rows.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 20, "a row without bars: {rows:?}");
    }
    eprintln!("chromium rendered the 1,000-slice report in {took:?}");
}
