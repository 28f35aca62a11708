//! `omk demo` runs a complete goal with nothing but the binary and git.

use std::process::Command;

#[test]
fn demo_runs_a_four_slice_goal_to_ready_repairing_a_failed_test_and_a_broken_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_omk"))
        .args(["demo", "--no-progress", "--dir"])
        .arg(&dir)
        .env("OMK_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("status: ready"), "{stdout}");
    assert!(stdout.contains("merged: "), "{stdout}");
    for slice in ["upper", "lower", "count", "docs"] {
        assert!(
            stdout.contains(&format!("[{slice}] merged into the candidate as")),
            "{stdout}"
        );
    }
    // The repair loop, told: `count` failed its test and was sent back with
    // the failure; of `upper` and `lower`, which pass alone and break a test
    // together, the one merged second was taken out and repaired.
    for said in [
        "── what omk repaired",
        "count  attempt 1: gate `test` failed",
        "the test said: expected '3', got '4'",
        "integration gate `test` fails once it is merged",
        "the test said: defined more than once in lib/: change_case",
        "attempt 2: merged after omk sent it the failure",
    ] {
        assert!(stdout.contains(said), "`{said}` missing from:\n{stdout}");
    }
    // The commands it suggests run as printed, with this binary.
    let omk = std::path::Path::new(env!("CARGO_BIN_EXE_omk"))
        .canonicalize()
        .unwrap();
    assert!(
        stdout.contains(&format!("{} -C ", omk.display())),
        "{stdout}"
    );
    assert!(stdout.contains("remove it all:  rm -rf "), "{stdout}");
    // Its timeline page has a row for each slice.
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for slice in ["upper", "lower", "count", "docs"] {
        assert!(
            report.contains(&format!("data-row=\"{slice}\"")),
            "no row for {slice} in the demo's report"
        );
    }
    // The result is real: its tests pass on the integration branch.
    let repo = dir.join("textkit");
    let check = tmp.path().join("check");
    let branch = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result branch:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let st = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["worktree", "add", "-q", "--detach"])
        .arg(&check)
        .arg(&branch)
        .status()
        .unwrap();
    assert!(st.success());
    let tests = Command::new("sh")
        .arg("tests/run.sh")
        .current_dir(&check)
        .output()
        .unwrap();
    assert!(tests.status.success());
    assert_eq!(
        String::from_utf8_lossy(&tests.stdout).lines().last(),
        Some("5 passed, 0 failed")
    );
    let readme = std::fs::read_to_string(check.join("README.md")).unwrap();
    assert!(
        readme.contains("- `upper`") && readme.contains("- `count`"),
        "{readme}"
    );
}
