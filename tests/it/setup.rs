//! `[[setup]]`: dependencies installed once per inputs, not in every gate —
//! seeded into every slot, run again only for a tree whose inputs changed,
//! never taken from what an agent left, and a failing one blocks the goal.

use serde_json::{json, Value};

use crate::support::{slice, Fixture};

/// A repository whose "dependencies" (`vendor/`) a setup installs from
/// `deps.lock`, counting its runs in `marks/runs`; its gate checks that
/// they are installed, match the lockfile, and hold nothing else.
fn fixture(marks: &tempfile::TempDir, setup: &str) -> Fixture {
    let toml = format!(
        r#"[[setup]]
name = "deps"
command = '''{setup}'''
inputs = ["deps.lock"]
outputs = ["vendor"]

[[gate]]
name = "test"
command = '''test "$(cat vendor/installed)" = "$(cat deps.lock)" && test ! -e vendor/poison'''
timeout = "30s"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", "vendor/\n"),
        ("deps.lock", "v1\n"),
    ])
}

fn install(marks: &tempfile::TempDir) -> String {
    format!(
        "echo run >> {}/runs; mkdir -p vendor; cp deps.lock vendor/installed",
        marks.path().display()
    )
}

fn runs(marks: &tempfile::TempDir) -> usize {
    std::fs::read_to_string(marks.path().join("runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn events(f: &Fixture, id: &str) -> Vec<Value> {
    std::fs::read_to_string(f.goal_dir(id).join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The log of goal `id`'s run of setup `name` that mentions `needle`.
fn setup_log(f: &Fixture, id: &str, name: &str, needle: &str) -> String {
    let logs: Vec<String> = crate::support::files_under(&f.goal_dir(id))
        .into_iter()
        .filter(|p| p.ends_with(format!("setup-{name}.log")))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    logs.iter()
        .find(|l| l.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no run of {name} says {needle}: {logs:#?}"))
}

#[test]
fn a_setup_runs_once_per_lockfile_and_no_agent_s_write_reaches_a_gate() {
    let marks = tempfile::tempdir().unwrap();
    let f = fixture(&marks, &install(&marks));
    // Each agent writes what it found installed (it can run the tests);
    // `s2` also writes into the installed dependencies, and `s6` moves the
    // lockfile on.
    let agent = f.agent(
        r#"cat vendor/installed > "$OMK_SLICE_ID.txt" 2>/dev/null || echo none > "$OMK_SLICE_ID.txt"
case "$OMK_SLICE_ID" in
  s2) echo owned > vendor/poison ;;
  s6) echo v2 > deps.lock ;;
esac
true"#,
    );
    let mut slices: Vec<Value> = (1..=5)
        .map(|i| slice(&format!("s{i}"), &[&format!("s{i}.txt")]))
        .collect();
    slices.push(slice("s6", &["s6.txt", "deps.lock"]));
    let plan = f.plan(json!({ "slices": slices }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    let branch = format!("omk/{id}/integration");
    for i in 1..=6 {
        assert_eq!(
            f.show(&branch, &format!("s{i}.txt")),
            "v1",
            "s{i}'s agent started with the dependencies installed"
        );
    }
    assert_eq!(f.show(&branch, "deps.lock"), "v2");
    // Once cold for the base's lockfile, once for `s6`'s: every other slot
    // was seeded.
    assert_eq!(runs(&marks), 2, "{stderr}");
    let ready: Vec<Value> = events(&f, &id)
        .into_iter()
        .filter(|e| e["kind"] == "setup_ready")
        .collect();
    let ran: Vec<&Value> = ready.iter().filter(|e| e["how"] == "ran").collect();
    assert_eq!(ran.len(), 2, "{ready:#?}");
    assert!(
        ran[1]["slice"] == "s6",
        "the second run is on s6's tree: {ready:#?}"
    );
    assert!(ready.iter().any(|e| e["how"] == "seeded"));
    assert!(
        ready
            .iter()
            .all(|e| e["slot"].as_str().unwrap().contains("/pool/slot-")),
        "each names its slot: {ready:#?}"
    );
    let keys: std::collections::BTreeSet<&str> =
        ready.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 2, "one key per lockfile");
    // The proof says which setup key each gate ran with.
    let key_of = |slice: &str| {
        crate::support::slice_of(&proof, slice)["gates"][0]["setups"]["deps"]
            .as_str()
            .unwrap_or_else(|| panic!("{proof:#}"))
            .to_string()
    };
    assert_eq!(key_of("s1"), ran[0]["key"].as_str().unwrap());
    assert_eq!(key_of("s6"), ran[1]["key"].as_str().unwrap());
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay", &id]).stdout).into_owned();
    assert!(replay.contains("setup deps ran"), "{replay}");
    assert!(replay.contains("setup deps seeded"), "{replay}");
    // The report draws the setups on a row of their own.
    let html = f.tmp.path().join("report.html");
    let out = f.omk(&["goal", "report", &id, "--html", html.to_str().unwrap()]);
    assert!(out.status.success());
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("p-setup"), "no setup bar");
    assert!(html.contains("deps ran for the base check"), "{html}");
    assert!(html.contains("deps ran for s6"));

    // A second goal on the same base installs nothing.
    let (code, proof, stderr) =
        f.run_goal(&plan, &agent, &["--concurrency", "3", "--no-gate-cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready");
    assert_eq!(runs(&marks), 2, "{stderr}");

    // What is kept is shown, and freed by `goal clean`.
    let doctor = String::from_utf8_lossy(&f.omk(&["doctor"]).stdout).into_owned();
    assert!(doctor.contains("setup outputs kept for 2 keys"), "{doctor}");
    let clean = f.omk(&["goal", "clean", "--all"]);
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(
        said.contains("removed the outputs of 2 setup keys"),
        "{said}"
    );
    let doctor = String::from_utf8_lossy(&f.omk(&["doctor"]).stdout).into_owned();
    assert!(doctor.contains("setup outputs kept for 0 keys"), "{doctor}");
}

#[test]
fn a_failing_setup_blocks_the_goal_before_any_agent_runs() {
    let marks = tempfile::tempdir().unwrap();
    let f = fixture(
        &marks,
        "echo 'npm ERR! 404 Not Found: left-pad@9.9.9' >&2; exit 1",
    );
    let agent = f.agent(&format!(
        "echo ran >> {}/agents; echo x > \"$OMK_SLICE_ID.txt\"",
        marks.path().display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "blocked", "{proof:#}");
    let reason = proof["reason"].as_str().unwrap();
    for said in [
        "setup `deps` failed (exit 1), so the gate did not run",
        "left-pad@9.9.9",
        "its setup failed: fix the setup's command or its inputs",
    ] {
        assert!(reason.contains(said), "`{said}` missing from: {reason}");
    }
    assert!(!reason.contains("could not even start"), "{reason}");
    assert!(!marks.path().join("agents").exists(), "no agent ran");
}

/// A real package manager from the registry: `npm ci` of a small real
/// dependency through the sandbox's egress proxy, once for the goal.
#[test]
fn npm_ci_runs_once_and_the_gates_only_test() {
    let marks = tempfile::tempdir().unwrap();
    let lock = serde_json::to_string_pretty(&json!({
        "name": "omk-setup-test", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": { "name": "omk-setup-test", "version": "1.0.0",
                  "dependencies": { "is-number": "7.0.0" } },
            "node_modules/is-number": { "version": "7.0.0",
                "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
                "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
                "engines": { "node": ">=0.12.0" } }
        }
    }))
    .unwrap();
    let package = json!({ "name": "omk-setup-test", "version": "1.0.0", "private": true,
        "dependencies": { "is-number": "7.0.0" } })
    .to_string();
    let toml = format!(
        r#"[[setup]]
name = "npm"
command = '''echo run >> {marks}/runs; npm ci --prefer-offline --no-audit --no-fund --loglevel http --cache "$OMK_SETUP_CACHE"'''
inputs = ["package-lock.json"]
outputs = ["node_modules"]
allow_hosts = ["registry.npmjs.org"]
timeout = "5m"

[[gate]]
name = "test"
command = '''node -e "process.exit(require('is-number')(7) ? 0 : 1)"'''
timeout = "1m"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", "node_modules/\n"),
        ("package.json", &package),
        ("package-lock.json", &lock),
    ]);
    // Each agent finds the dependency installed; `s1` also breaks it in
    // its slot, which no gate may see.
    let agent = f.agent(
        r#"node -e "require('is-number')" && echo 7 > "n-$OMK_SLICE_ID.txt"
[ "$OMK_SLICE_ID" = s1 ] && echo 'module.exports = () => false' > node_modules/is-number/index.js
true"#,
    );
    let slices: Vec<Value> = (1..=6)
        .map(|i| slice(&format!("s{i}"), &[&format!("n-s{i}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(runs(&marks), 1, "npm ci ran once for the goal: {stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    for i in 1..=6 {
        assert_eq!(
            f.show(&format!("omk/{id}/integration"), &format!("n-s{i}.txt")),
            "7"
        );
    }
    // The next goal installs nothing.
    let (code, _, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3", "--no-gate-cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(runs(&marks), 1, "{stderr}");

    // A slice that adds a dependency runs `npm ci` on its tree again, and
    // fetches only the new package: the base's are in its download cache.
    let mut lock: Value = serde_json::from_str(&lock).unwrap();
    lock["packages"][""]["dependencies"]["ms"] = json!("2.1.3");
    lock["packages"]["node_modules/ms"] = json!({ "version": "2.1.3",
        "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
        "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==" });
    let mut package: Value = serde_json::from_str(&package).unwrap();
    package["dependencies"]["ms"] = json!("2.1.3");
    let lock = f.script("lock.json", &serde_json::to_string_pretty(&lock).unwrap());
    let package = f.script("package.json", &package.to_string());
    let agent = f.agent(&format!(
        "cp {} package-lock.json && cp {} package.json",
        lock.display(),
        package.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("ms", &["package.json", "package-lock.json"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(runs(&marks), 2, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let run = setup_log(&f, id, "npm", "ms-2.1.3.tgz");
    let fetched = |package: &str| {
        run.lines()
            .filter(|l| l.contains("npm http") && l.contains(package))
            .any(|l| l.contains("(cache miss)"))
    };
    assert!(fetched("/ms/-/ms-2.1.3.tgz"), "{run}");
    assert!(!fetched("is-number"), "is-number was fetched again:\n{run}");
}

#[test]
fn a_write_the_sandbox_refused_is_named_with_the_line_that_allows_it() {
    let f = Fixture::new(&[(
        "omk.toml",
        &crate::support::gate_toml("test", "mkdir -p /var/cache/omk-refused/npm", "both"),
    )]);
    let agent = f.agent("echo x > \"$OMK_SLICE_ID.txt\"");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{stderr}");
    let reason = proof["reason"].as_str().unwrap();
    for said in [
        "the sandbox refused a write to /var/cache/omk-refused",
        "add `writable = [\"/var/cache",
        "under `[sandbox]` in omk.toml",
    ] {
        assert!(reason.contains(said), "`{said}` missing from: {reason}");
    }
    assert!(!std::path::Path::new("/var/cache/omk-refused").exists());
}

/// A Python virtualenv with pip from PyPI, made once and seeded into the
/// other slots: run as `.venv/bin/python -m …`, it works wherever it lands.
#[test]
fn a_venv_made_once_with_pip_works_in_every_slot() {
    let marks = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"[[setup]]
name = "venv"
command = '''echo run >> {marks}/runs; python3 -m venv .venv && .venv/bin/python -m pip install --cache-dir "$OMK_SETUP_CACHE" --disable-pip-version-check -r requirements.txt'''
inputs = ["requirements.txt"]
outputs = [".venv"]
allow_hosts = ["pypi.org", "files.pythonhosted.org"]
timeout = "5m"

[[gate]]
name = "test"
command = '''.venv/bin/python -c "import six, sys; assert sys.prefix.startswith('$PWD'), sys.prefix"'''
timeout = "1m"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", ".venv/\n"),
        ("requirements.txt", "six==1.16.0\n"),
    ]);
    let agent = f.agent(r#".venv/bin/python -c "import six" && echo ok > "$OMK_SLICE_ID.txt""#);
    let slices: Vec<Value> = (1..=3)
        .map(|i| slice(&format!("s{i}"), &[&format!("s{i}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(runs(&marks), 1, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    for i in 1..=3 {
        assert_eq!(
            f.show(&format!("omk/{id}/integration"), &format!("s{i}.txt")),
            "ok"
        );
    }

    // A slice that adds a requirement makes a venv of its own, through
    // its copy of the download cache. (Whether pip takes `six` from it is
    // pip's and the index's to say: this machine's PyPI mirror forbids
    // caching, so it is not asserted; it is for npm and cargo.)
    let agent = f.agent("echo idna==3.7 >> requirements.txt");
    let plan = f.plan(json!({ "slices": [slice("idna", &["requirements.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(runs(&marks), 2, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let run = setup_log(&f, id, "venv", "idna");
    assert!(run.contains("Successfully installed"), "{run}");
    assert!(
        run.contains("idna-3.7") && run.contains("six-1.16.0"),
        "{run}"
    );
}

/// What a setup run fetched (`$OMK_SETUP_CACHE`): `marks/fetches` says,
/// per package, whether the run found it in its cache.
fn fetches(marks: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(marks.path().join("fetches"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The packages the setup's kept download cache holds, with their content.
fn kept_downloads(f: &Fixture) -> Vec<(String, String)> {
    let mut kept = vec![];
    for file in crate::support::files_under(&f.state_dir().join("pool/downloads")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('v') {
            kept.push((name, std::fs::read_to_string(&file).unwrap()));
        }
    }
    kept.sort();
    kept
}

/// The download cache: a package fetched on the base is not fetched again
/// by a slice whose lockfile added another; what a slice's run fetched (or
/// planted, from code its agent wrote) reaches no other run; agents and
/// gates neither see nor write it.
#[test]
fn a_setup_s_download_cache_is_shared_from_the_base_only() {
    let marks = tempfile::tempdir().unwrap();
    let setup = r#"mkdir -p vendor
for p in $(sort -u deps/*); do
  if [ -e "$OMK_SETUP_CACHE/$p" ]; then echo "hit $p" >> MARKS/fetches
  else echo "miss $p" >> MARKS/fetches; echo "$p" > "$OMK_SETUP_CACHE/$p"; fi
  cp "$OMK_SETUP_CACHE/$p" "vendor/$p"
done
sh hook.sh"#
        .replace("MARKS", &marks.path().display().to_string());
    let toml = format!(
        r#"[[setup]]
name = "deps"
command = '''{setup}'''
inputs = ["deps"]
outputs = ["vendor"]

[[gate]]
name = "test"
command = '''test -z "$OMK_SETUP_CACHE" && for p in $(cat deps/*); do test "$(cat vendor/$p)" = "$p" || exit 1; done'''
timeout = "30s"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", "vendor/\n"),
        ("deps/base.lock", "v1\n"),
        ("hook.sh", "true\n"),
    ]);
    // Each agent says whether it sees the cache and tries to poison the
    // kept one; `s1` and `s3` add `v2`, `s2` adds `v3` and makes the
    // setup plant a poisoned `v1` in whatever cache its run is given.
    let agent = f.agent(
        &r#"echo "${OMK_SETUP_CACHE:-unset}" > "$OMK_SLICE_ID.txt"
for k in HOME/repos/*/pool/downloads/*/*/v1; do echo poisoned > "$k" 2>/dev/null || true; done
case "$OMK_SLICE_ID" in
  s1|s3) echo v2 > "deps/$OMK_SLICE_ID.lock" ;;
  s2) echo v3 > deps/s2.lock
      printf '%s\n' 'echo poisoned > "$OMK_SETUP_CACHE/v1"' 'echo hooked >> MARKS/hooks' > hook.sh ;;
esac
true"#
            .replace("HOME", &f.home.display().to_string())
            .replace("MARKS", &marks.path().display().to_string()),
    );
    let plan = f.plan(json!({ "slices": [
        slice("s1", &["s1.txt", "deps/s1.lock"]),
        slice("s2", &["s2.txt", "deps/s2.lock", "hook.sh"]),
        slice("s3", &["s3.txt", "deps/s3.lock"]),
    ]}));
    let (code, proof, stderr) =
        f.run_goal(&plan, &agent, &["--concurrency", "1", "--require-sandbox"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let id = proof["goal_id"].as_str().unwrap();
    for s in ["s1", "s2", "s3"] {
        assert_eq!(
            f.show(&format!("omk/{id}/integration"), &format!("{s}.txt")),
            "unset",
            "agents do not see the cache"
        );
    }
    let seen = fetches(&marks);
    // `v1` was fetched once, by the base's run; every later run found it.
    assert_eq!(seen[0], "miss v1", "{seen:#?}");
    assert_eq!(
        seen.iter().filter(|l| *l == "miss v1").count(),
        1,
        "{seen:#?}"
    );
    assert!(
        seen.iter().filter(|l| *l == "hit v1").count() >= 3,
        "{seen:#?}"
    );
    // What slices' runs fetched was theirs alone: `s3` fetched `v2` again.
    assert!(!seen.contains(&"hit v2".to_string()), "{seen:#?}");
    assert!(
        seen.iter().filter(|l| *l == "miss v2").count() >= 2,
        "{seen:#?}"
    );
    // `s2`'s hook ran and poisoned its own copy, no other.
    assert!(marks.path().join("hooks").exists(), "s2's hook never ran");
    assert_eq!(
        kept_downloads(&f),
        vec![("v1".to_string(), "v1\n".to_string())],
        "the kept cache holds the base's fetch, unpoisoned"
    );
    let doctor = String::from_utf8_lossy(&f.omk(&["doctor"]).stdout).into_owned();
    assert!(doctor.contains("download caches of 1 setup"), "{doctor}");

    // The user's next base adds `v2`: its run fetches only that, and keeps it.
    f.write("deps/base.lock", "v1\nv2\n");
    f.git(&["commit", "-qam", "v2"]);
    std::fs::remove_file(marks.path().join("fetches")).unwrap();
    let plan = f.plan(json!({ "slices": [slice("s4", &["s4.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(fetches(&marks), ["hit v1", "miss v2"]);
    assert_eq!(
        kept_downloads(&f),
        vec![
            ("v1".to_string(), "v1\n".to_string()),
            ("v2".to_string(), "v2\n".to_string())
        ]
    );
    let clean = f.omk(&["goal", "clean", "--all"]);
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(
        said.contains("removed the download cache of 1 setup"),
        "{said}"
    );
    assert!(kept_downloads(&f).is_empty());
}

const CARGO_LOCK_HEAD: &str = "# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = \"itoa\"
version = \"1.0.19\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
checksum = \"3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4\"
";

/// Cargo from crates.io, with the README's recipe: `cargo vendor` into an
/// ignored directory as the setup (its downloads in `$OMK_SETUP_CACHE`),
/// the gates offline from it. A slice that adds a crate fetches that one.
#[test]
fn cargo_vendors_once_per_lockfile_and_a_new_crate_alone_is_fetched() {
    let marks = tempfile::tempdir().unwrap();
    let manifest = |deps: &str| {
        format!("[package]\nname = \"omk-cargo-test\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}")
    };
    let lock = |deps: &[&str], more: &str| {
        format!(
            "{CARGO_LOCK_HEAD}\n[[package]]\nname = \"omk-cargo-test\"\nversion = \"0.1.0\"\ndependencies = [\n{}]\n{more}",
            deps.iter().map(|d| format!(" \"{d}\",\n")).collect::<String>()
        )
    };
    let toml = format!(
        r#"[[setup]]
name = "crates"
command = '''echo run >> {marks}/runs; CARGO_HOME="$OMK_SETUP_CACHE" cargo vendor --locked .omk-vendor > /dev/null'''
inputs = ["Cargo.lock"]
outputs = [".omk-vendor"]
allow_hosts = ["index.crates.io", "static.crates.io"]
timeout = "5m"

[[gate]]
name = "test"
command = '''cargo test --offline --config 'source.crates-io.replace-with="vendored-sources"' --config 'source.vendored-sources.directory=".omk-vendor"' '''
timeout = "5m"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", "/target\n/.omk-vendor\n"),
        ("Cargo.toml", &manifest("itoa = \"=1.0.19\"\n")),
        ("Cargo.lock", &lock(&["itoa"], "")),
        (
            "src/lib.rs",
            "#[test]\nfn formats() {\n    assert_eq!(itoa::Buffer::new().format(7u8), \"7\");\n}\n",
        ),
    ]);
    let ryu = "\n[[package]]\nname = \"ryu\"\nversion = \"1.0.23\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"9774ba4a74de5f7b1c1451ed6cd5285a32eddb5cccb8cc655a4e50009e06477f\"\n";
    let new_manifest = f.script(
        "Cargo.toml",
        &manifest("itoa = \"=1.0.19\"\nryu = \"=1.0.23\"\n"),
    );
    let new_lock = f.script("Cargo.lock", &lock(&["itoa", "ryu"], ryu));
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  a) echo a > a.txt ;;
  b) cp {} Cargo.toml; cp {} Cargo.lock ;;
esac"#,
        new_manifest.display(),
        new_lock.display()
    ));
    let plan = f.plan(json!({ "slices": [
        slice("a", &["a.txt"]), slice("b", &["Cargo.toml", "Cargo.lock"])
    ]}));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(runs(&marks), 2, "the base's lockfile and b's: {stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let b = setup_log(&f, id, "crates", "ryu");
    assert!(b.contains("Downloaded ryu"), "{b}");
    assert!(
        !b.contains("Downloaded itoa"),
        "itoa was fetched again:\n{b}"
    );
}
