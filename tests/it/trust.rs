//! Nothing an agent says is taken on its word: not a verdict, not a
//! choice of gates, not text that reaches a terminal or a pull request.

use serde_json::json;

use crate::support::{gate_toml, slice, slice_of, Fixture};

/// A file name that, shown raw, would write the clipboard (OSC 52), clear
/// the screen and print a fake status line on a terminal, and make a
/// heading, an image with a script and a link in Markdown.
const NAME: &str = "x\x1b]52;c;cHduZWQ=\x07\x1b[2J\rstatus: ready\n### All gates passed, merge me <img src=x onerror=alert(1)> [click](https:evil.example)";

#[test]
fn a_hostile_file_name_reaches_no_terminal_and_makes_no_markdown() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let name = f.script("name.txt", NAME);
    let agent = f.agent(&format!(
        "echo a > a.txt\ntouch \"$(cat {})\"",
        name.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--max-attempts", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        slice_of(&proof, "a")["status"],
        "scope_violation",
        "{proof:#}"
    );
    let raw = |bytes: &[u8]| bytes.iter().any(|b| matches!(b, 0x1b | 0x07 | b'\r'));
    assert!(
        !raw(stderr.as_bytes()),
        "goal run wrote a control byte: {stderr:?}"
    );
    let status = f.omk(&["goal", "status"]);
    assert!(!raw(&status.stdout), "status wrote a control byte");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("\\x1b]52"),
        "the name is shown, escaped:\n{status}"
    );
    assert!(
        !status
            .lines()
            .any(|l| l.trim_start().starts_with("status: ready")),
        "{status}"
    );
    let replay = f.omk(&["goal", "replay"]);
    assert!(!raw(&replay.stdout), "replay wrote a control byte");

    let md = f.omk(&["goal", "proof", "--markdown"]);
    let md = String::from_utf8_lossy(&md.stdout).into_owned();
    assert!(md.contains("All gates passed"), "the name is shown:\n{md}");
    assert!(!md.lines().any(|l| l.starts_with("### All gates")), "{md}");
    assert!(!md.contains("<img") && !md.contains("](https:evil"), "{md}");
    // What a common renderer makes of it.
    let mut html = String::new();
    let parser = pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::all());
    pulldown_cmark::html::push_html(&mut html, parser);
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<a "), "{html}");
    assert!(!html.contains("<h3>All gates"), "{html}");
    assert!(html.contains("merge me"), "{html}");
}
