//! Plans: loading, validation, order, scopes.

use super::scope::is_slip;
use super::*;

fn slice(id: &str, deps: &[&str]) -> SliceSpec {
    SliceSpec {
        id: id.into(),
        title: String::new(),
        prompt: "do it".into(),
        write_scope: vec!["**".into()],
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        gates: None,
    }
}

fn plan(slices: Vec<SliceSpec>) -> Plan {
    Plan {
        goal: None,
        slices,
        notes: vec![],
    }
}

#[test]
fn order_follows_dependencies_then_plan_order() {
    let p = plan(vec![
        slice("c", &["b"]),
        slice("a", &[]),
        slice("b", &["a"]),
    ]);
    assert_eq!(p.order().unwrap(), vec!["a", "b", "c"]);
    assert!(p.validate(Some(3), &[]).is_empty());
}

#[test]
fn every_problem_is_named() {
    let mut bad = slice("Bad_Id", &["ghost"]);
    bad.prompt = " ".into();
    bad.write_scope = vec!["/etc/**".into(), "../x".into()];
    let p = plan(vec![bad, slice("a", &[]), slice("a", &[])]);
    let errors = p.validate(Some(2), &[]).join("\n");
    for needle in [
        "at most 2 were asked for",
        "not a valid id",
        "duplicate id",
        "prompt: empty",
        "absolute",
        "`..`",
        "unknown slice id `ghost`",
    ] {
        assert!(errors.contains(needle), "missing {needle:?} in:\n{errors}");
    }
}

#[test]
fn cycles_are_refused() {
    let p = plan(vec![
        slice("a", &["b"]),
        slice("b", &["a"]),
        slice("c", &[]),
    ]);
    let errors = p.validate(None, &[]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("cycle among a, b"), "{errors:?}");
}

#[test]
fn scopes_that_match_no_file_are_warned_about() {
    let mut a = slice("a", &[]);
    a.write_scope = vec!["src/item.py".into(), "src/tiem.py".into(), "tset/**".into()];
    let mut b = slice("b", &[]);
    b.write_scope = vec!["src/".into(), "docs/new.md".into()];
    let plan = Plan {
        slices: vec![a, b],
        ..Plan::default()
    };
    let tracked = vec!["src/item.py".to_string(), "docs/index.md".into()];
    let warnings = scope_warnings(&plan, &tracked);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0]
        .contains("`src/tiem.py` matches no file at the base, but `src/item.py` is there"));
    assert!(warnings[1].contains("`tset/` does not exist"));
    // A new file beside others is no typo.
    assert!(!warnings.iter().any(|w| w.contains("docs/new.md")));
}

#[test]
fn a_slip_is_one_edit_in_a_short_name_and_two_in_a_long_one() {
    assert!(is_slip("tiem.py", "item.py"));
    assert!(is_slip("itm.py", "item.py"));
    assert!(is_slip("configuration.rs", "confgiuraton.rs"));
    assert!(!is_slip("upper.sh", "echo.sh"));
    assert!(!is_slip("a.txt", "a.txt"));
    assert!(!is_slip("test_upper.sh", "test_echo.sh"));
    assert!(!is_slip("ab.rs", "ba.py"));
}

#[test]
fn reserved_and_unknown_gates_are_refused() {
    let mut s = slice("integration", &[]);
    s.gates = Some(vec!["lint".into()]);
    let errors = plan(vec![s]).validate(None, &["test".into()]).join("\n");
    assert!(errors.contains("reserved"));
    assert!(errors.contains("no per-slice gate named `lint` (known: test)"));
}

#[test]
fn scope_matches_below_directories_only() {
    let scope = WriteScope::new(&["src/a/**".into(), "docs/".into(), "*.md".into()]).unwrap();
    let paths: Vec<String> = [
        "src/a/x.rs",
        "src/a/b/y.rs",
        "docs/x/y",
        "README.md",
        "src/b.rs",
        "docs2/x",
        "sub/R.md",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bad: Vec<&str> = scope
        .violations(&paths)
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(bad, vec!["src/b.rs", "docs2/x", "sub/R.md"]);
}

#[test]
fn toml_and_json_plans_load() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("p.json");
    std::fs::write(
        &json,
        r#"{"slices":[{"id":"a","prompt":"x","write_scope":["**"]}]}"#,
    )
    .unwrap();
    assert_eq!(Plan::load(&json).unwrap().slices[0].id, "a");
    let toml = dir.path().join("p.toml");
    std::fs::write(
        &toml,
        "[[slices]]\nid = \"b\"\nprompt = \"y\"\nwrite_scope = [\"**\"]\n",
    )
    .unwrap();
    assert_eq!(Plan::load(&toml).unwrap().slices[0].id, "b");
    std::fs::write(&json, r#"{"slices":[{"id":"a"}]}"#).unwrap();
    let err = Plan::load(&json).unwrap_err().to_string();
    assert!(err.contains("missing field `prompt`"), "{err}");
}

#[test]
fn a_cone_holds_the_directories_a_scope_names() {
    let cone = |scope: &[&str], include: &[&str]| {
        let s: Vec<String> = scope.iter().map(|p| p.to_string()).collect();
        let i: Vec<String> = include.iter().map(|p| p.to_string()).collect();
        super::cone(&s, &i)
    };
    let dirs = |d: &[&str]| Some(d.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    assert_eq!(cone(&["src/api/**"], &[]), dirs(&["src/api"]));
    assert_eq!(cone(&["src/api/"], &[]), dirs(&["src/api"]));
    assert_eq!(
        cone(&["src/*.rs", "docs/api.md"], &[]),
        dirs(&["docs", "src"])
    );
    assert_eq!(
        cone(&["crates/a/src/**/*.rs"], &["build/"]),
        dirs(&["build", "crates/a/src"])
    );
    // Top-level files are in every cone.
    assert_eq!(cone(&["README.md", "*.toml"], &[]), dirs(&[]));
    // A pattern that can match anywhere fits no cone.
    assert_eq!(cone(&["**"], &[]), None);
    assert_eq!(cone(&["src/**", "**/*.rs"], &[]), None);
    assert_eq!(cone(&["*/mod.rs"], &[]), None);
}
