//! Reading `omk.toml`, and what it refuses.

use super::*;

#[test]
fn configured_gates_win_over_detection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        "[run]\nmax_attempts = 3\n[[gate]]\nname = \"lint\"\ncommand = \"true\"\ntimeout = \"5s\"\nscope = \"slice\"\n",
    )
    .unwrap();
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(c.gates.len(), 1);
    assert_eq!(c.gates[0].timeout, Duration::from_secs(5));
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.integration_gates().count(), 0);
}

#[test]
fn prices_apply_to_the_chosen_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        "[run]\nmodel = \"k2\"\n[[price]]\nmodel = \"k1\"\ninput_per_million = 1.0\noutput_per_million = 1.0\n[[price]]\nmodel = \"k2\"\ninput_per_million = 0.5\noutput_per_million = 2.0\n",
    )
    .unwrap();
    let price = Config::load(dir.path()).unwrap().price.unwrap();
    assert_eq!(price.model, "k2");
    assert!((price.usd(1_000_000, 500_000) - 1.5).abs() < 1e-9);
}

#[test]
fn detection_uses_build_files() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        Config::load(dir.path()).unwrap().gates_source,
        GatesSource::None
    );
    std::fs::write(dir.path().join("go.mod"), "module x").unwrap();
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(c.gates[0].command, "go test ./...");
}

#[test]
fn bad_config_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, field) in [
        (
            "[[gate]]\nname = \"t\"\ncommand = \"true\"\ntimeout = \"soon\"\n",
            "gate[0] (`t`).timeout",
        ),
        (
            "[pool]\ncache = [\"target dir\"]\n",
            "pool.cache: `target dir`",
        ),
        (
            "[sparse]\ninclude = [\"../up\"]\n",
            "sparse.include: `../up`",
        ),
    ] {
        std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn a_review_gate_reads_its_instructions_from_a_file_or_takes_the_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/review.md"), "Check the units.\n").unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        "[[gate]]\nname = \"test\"\ncommand = \"true\"\n\
         [[gate]]\nname = \"review\"\nkind = \"review\"\ninstructions = \"docs/review.md\"\n\
         [[gate]]\nname = \"security\"\nkind = \"review\"\npreset = \"security\"\ninstructions = \"No new crates.\"\nmax_tokens = 5000\n",
    )
    .unwrap();
    let c = Config::load(dir.path()).unwrap();
    assert!(c.gates[0].review.is_none());
    let review = c.gates[1].review.as_ref().unwrap();
    assert_eq!(review.instructions, "Check the units.\n");
    assert_eq!(review.agent, None, "the goal's agent, filled in by the run");
    assert_eq!(c.gates[1].cpus, Some(1), "a reviewer waits on its model");
    let security = c.gates[2].review.as_ref().unwrap();
    assert!(security.instructions.contains("secrets in code"));
    assert!(security.instructions.ends_with("No new crates."));
    assert_eq!(security.max_tokens, Some(5000));

    std::fs::write(
        dir.path().join(FILE_NAME),
        "[[gate]]\nname = \"t\"\ncommand = \"true\"\ninstructions = \"x\"\n",
    )
    .unwrap();
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("gate[0] (`t`).instructions: only a review gate takes it"),
        "{err}"
    );
}

#[test]
fn the_executor_is_local_unless_slurm_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), "[run]\nmax_attempts = 2\n").unwrap();
    assert!(Config::load(dir.path()).unwrap().executor.is_local());
    std::fs::write(
        dir.path().join(FILE_NAME),
        "[executor]\nkind = \"slurm\"\n[executor.slurm]\npartition = \"gpu\"\ncpus_per_slice = 4\nsbatch_args = [\"--qos=low\"]\n",
    )
    .unwrap();
    match Config::load(dir.path()).unwrap().executor {
        crate::executor::Executor::Slurm(s) => {
            assert_eq!(s.partition.as_deref(), Some("gpu"));
            assert_eq!(s.cpus_per_slice, Some(4));
            assert_eq!(s.sbatch_args, ["--qos=low"]);
        }
        other => panic!("{other:?}"),
    }
    for (toml, said) in [
        (
            "[executor]\nkind = \"k8s\"\n",
            "executor.kind: `k8s` is not an executor",
        ),
        ("[executor.slurm]\nqueue = \"x\"\n", "unknown field `queue`"),
    ] {
        std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(said), "{err}");
    }
}

#[test]
fn every_problem_of_the_file_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        "[run]\nslice_timeout = \"soon\"\nmax_attempts = 0\n\
         [[gate]]\nname = \"t\"\ncommand = \"\"\ncpus = 0\n\
         [pool]\ncache = [\"a b\"]\nmax_disk = \"lots\"\n",
    )
    .unwrap();
    let err = Config::load(dir.path()).unwrap_err().to_string();
    for said in [
        "6 problems",
        "pool.max_disk",
        "gate[0] (`t`).command: empty or missing",
        "gate[0] (`t`).cpus: must be at least 1",
        "run.slice_timeout",
        "run.max_attempts: must be at least 1",
        "pool.cache: `a b`",
    ] {
        assert!(err.contains(said), "`{said}` missing from: {err}");
    }
}

#[test]
fn a_gate_reproduces_one_check_and_must_judge_the_integration() {
    let dir = tempfile::tempdir().unwrap();
    let write = |toml: &str| std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
    write("[[gate]]\nname = \"unit\"\ncommand = \"true\"\nci = \"test (ubuntu)\"\n");
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(c.gates[0].ci.as_deref(), Some("test (ubuntu)"));
    write(
        "[[gate]]\nname = \"lint\"\ncommand = \"true\"\nscope = \"slice\"\nci = \"lint\"\n\
         [[gate]]\nname = \"a\"\ncommand = \"true\"\nci = \"test\"\n\
         [[gate]]\nname = \"b\"\ncommand = \"true\"\nci = \"test\"\n\
         [[gate]]\nname = \"c\"\ncommand = \"true\"\nci = \" \"\n",
    );
    let err = Config::load(dir.path()).unwrap_err().to_string();
    for said in [
        "3 problems",
        "gate[0] (`lint`).ci: only a gate that judges the integration",
        "gate[2] (`b`).ci: check `test` is reproduced by gate `a` already",
        "gate[3] (`c`).ci: empty",
    ] {
        assert!(err.contains(said), "`{said}` missing from: {err}");
    }
}

#[test]
fn a_setup_names_its_command_inputs_and_outputs_and_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let write = |toml: &str| std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
    write(
        "[[setup]]\nname = \"deps\"\ncommand = \"npm ci\"\ninputs = [\"package-lock.json\"]\n\
         outputs = [\"node_modules\"]\nallow_hosts = [\"registry.npmjs.org\"]\ntimeout = \"5m\"\n\
         [[gate]]\nname = \"test\"\ncommand = \"npm test\"\n",
    );
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(c.setups.len(), 1);
    assert_eq!(c.setups[0].outputs, ["node_modules"]);
    assert_eq!(c.setups[0].timeout, Duration::from_secs(300));
    write(
        "[[setup]]\nname = \"deps\"\ncommand = \"npm ci\"\ninputs = [\"package-lock.json\"]\noutputs = [\"node_modules\"]\n\
         [[setup]]\nname = \"deps\"\ninputs = []\noutputs = [\"../up\", \"node_modules\"]\ntimeout = \"soon\"\n\
         [[setup]]\nname = \"py\"\ncommand = \"uv sync\"\ninputs = [\"/etc/passwd\"]\noutputs = [\".git/x\"]\n",
    );
    let err = Config::load(dir.path()).unwrap_err().to_string();
    for said in [
        "8 problems",
        "setup[1] (`deps`).name: duplicate setup name",
        "setup[1] (`deps`).command: empty or missing",
        "setup[1] (`deps`).inputs: empty",
        "setup[1] (`deps`).outputs: `../up` is not a path inside the repository",
        "setup[1] (`deps`).outputs: `node_modules` is setup `deps`'s output already",
        "setup[1] (`deps`).timeout",
        "setup[2] (`py`).inputs: `/etc/passwd` is not a path inside the repository",
        "setup[2] (`py`).outputs: `.git/x` is not an untracked path of the slot",
    ] {
        assert!(err.contains(said), "`{said}` missing from: {err}");
    }
}

#[test]
fn the_pool_s_disk_bound_is_a_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), "[pool]\nmax_disk = \"20GiB\"\n").unwrap();
    let config = Config::load(dir.path()).unwrap();
    assert_eq!(config.pool_max_disk, Some(20 << 30));
    std::fs::write(dir.path().join(FILE_NAME), "[pool]\nmax_disk = \"0\"\n").unwrap();
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("pool.max_disk: `0` is too small"), "{err}");
}
