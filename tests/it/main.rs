//! omk's one integration-test binary (one link of the crate, as jj does):
//! every file here is a module of it, sharing `support`.

mod support;

mod adversarial;
mod bad_input;
mod cold;
mod deliver;
mod demo;
mod faults;
mod goal_run;
mod inspect;
mod kimi;
mod land;
mod lifecycle;
mod mcp;
mod planner;
mod report;
mod review;
mod sandbox;
mod setup;
mod shape;
mod slurm;
mod trust;

/// A test file that is not declared above would silently never run.
#[test]
fn every_test_file_is_part_of_the_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = include_str!("main.rs");
    let mut missing = Vec::new();
    for entry in walk(&dir) {
        let rel = entry.strip_prefix(&dir).unwrap().to_path_buf();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        match parts.as_slice() {
            [it, file] if it == "it" && file.ends_with(".rs") && file != "main.rs" => {
                let module = file.trim_end_matches(".rs");
                if !main.lines().any(|l| l.trim() == format!("mod {module};")) {
                    missing.push(rel.display().to_string());
                }
            }
            [it, support, ..] if it == "it" && support == "support" => {}
            [it, file] if it == "it" && file == "main.rs" => {}
            _ => missing.push(format!("{} (outside tests/it/)", rel.display())),
        }
    }
    assert!(
        missing.is_empty(),
        "test files that are not part of tests/it/main.rs: {missing:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
