//! omk's worktrees and merges on real repositories.
use super::*;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == ".git" {
            continue;
        }
        if p.is_dir() {
            out.extend(files(&p).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(format!(
                "{name}={}",
                std::fs::read_to_string(&p).unwrap_or_default()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_recycled_slot_holds_exactly_the_start_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    std::fs::create_dir_all(main.join("src")).unwrap();
    std::fs::write(main.join("src/a.txt"), "a\n").unwrap();
    std::fs::write(main.join("b.txt"), "b\n").unwrap();
    std::fs::write(main.join("c.txt"), "c\n").unwrap();
    std::fs::write(main.join(".gitignore"), "target/\n").unwrap();
    git(&main, &["init", "-q", "-b", "main"]);
    git(&main, &["add", "-A"]);
    git(&main, &["commit", "-q", "-m", "base"]);
    let base = git(&main, &["rev-parse", "HEAD"]);
    let repo = Repo::discover(&main).unwrap();
    let slot = tmp.path().join("pool/slot-0");
    assert_eq!(
        repo.checkout_bytes(&base).unwrap(),
        14,
        "the bytes of the 4 files"
    );

    // One slice works in the slot and commits on its branch…
    repo.prepare_worktree(&slot, Some("omk/g/one"), &base, None, &[])
        .unwrap();
    std::fs::create_dir_all(slot.join("one")).unwrap();
    std::fs::write(slot.join("one/out.txt"), "one\n").unwrap();
    let one = repo
        .commit_worktree(&slot, "omk/g/one", &base, "one")
        .unwrap()
        .unwrap();
    assert_eq!(one.changed_files, vec!["one/out.txt"]);
    // …and leaves every kind of leftover behind.
    std::fs::write(slot.join("untracked.txt"), "u\n").unwrap();
    std::fs::create_dir_all(slot.join("target/debug")).unwrap();
    std::fs::write(slot.join("target/debug/ignored.bin"), "i\n").unwrap();
    std::fs::write(slot.join("b.txt"), "modified\n").unwrap();
    std::fs::remove_file(slot.join("c.txt")).unwrap();
    std::fs::remove_file(slot.join("src/a.txt")).unwrap();
    std::fs::create_dir_all(slot.join("src/a.txt")).unwrap();
    std::fs::write(slot.join("src/a.txt/inner"), "dir now\n").unwrap();

    // The next slice gets exactly the base tree, on its own branch.
    repo.prepare_worktree(&slot, Some("omk/g/two"), &base, None, &[])
        .unwrap();
    assert_eq!(files(&slot), files(&main), "the slot is not the base tree");
    assert_eq!(
        git(&main, &["rev-parse", "omk/g/two"]),
        base,
        "the branch is at the start"
    );
    assert_eq!(git(&slot, &["rev-parse", "HEAD"]), base);
    assert_eq!(git(&slot, &["status", "--porcelain", "--ignored"]), "");
    // The first slice's commit is kept on its branch.
    assert_eq!(git(&main, &["show", "omk/g/one:one/out.txt"]), "one");

    // A sparse slice gets the top-level files and its cone only…
    let cone = vec!["src".to_string()];
    repo.prepare_worktree(&slot, Some("omk/g/three"), &base, Some(&cone), &[])
        .unwrap();
    assert!(repo.is_sparse(&slot));
    assert_eq!(
        files(&slot),
        [
            ".gitignore=target/\n",
            "b.txt=b\n",
            "c.txt=c\n",
            "src/a.txt=a\n"
        ]
    );
    // …and its commit still holds the whole tree.
    std::fs::write(slot.join("src/new.txt"), "new\n").unwrap();
    let three = repo
        .commit_worktree(&slot, "omk/g/three", &base, "three")
        .unwrap()
        .unwrap();
    assert_eq!(three.changed_files, vec!["src/new.txt"]);
    let tree = git(&main, &["ls-tree", "-r", "--name-only", "omk/g/three"]);
    assert_eq!(tree, ".gitignore\nb.txt\nc.txt\nsrc/a.txt\nsrc/new.txt");
    // Another cone, then a full slice again: each sees exactly its part.
    std::fs::write(slot.join("src/a.txt"), "dirty\n").unwrap();
    let other = vec!["one".to_string()];
    repo.prepare_worktree(&slot, Some("omk/g/four"), &one.commit, Some(&other), &[])
        .unwrap();
    assert_eq!(
        files(&slot),
        [
            ".gitignore=target/\n",
            "b.txt=b\n",
            "c.txt=c\n",
            "one/out.txt=one\n"
        ]
    );
    repo.prepare_worktree(&slot, Some("omk/g/five"), &base, None, &[])
        .unwrap();
    assert!(!repo.is_sparse(&slot));
    assert_eq!(files(&slot), files(&main));
    // git2 still opens the repository, whose config git changed.
    assert!(repo.worktree_config_enabled());
    repo.guard().unwrap();
}

#[test]
fn a_forged_dotgit_is_seen_and_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    std::fs::create_dir_all(&main).unwrap();
    std::fs::write(main.join("a.txt"), "a\n").unwrap();
    git(&main, &["init", "-q", "-b", "main"]);
    git(&main, &["add", "-A"]);
    git(&main, &["commit", "-q", "-m", "base"]);
    let base = git(&main, &["rev-parse", "HEAD"]);
    // Work in progress the user staged.
    std::fs::write(main.join("a.txt"), "staged\n").unwrap();
    git(&main, &["add", "a.txt"]);
    let index = std::fs::read(main.join(".git/index")).unwrap();
    let repo = Repo::discover(&main).unwrap();
    let path = tmp.path().join("pool/slot-0");
    let slot = repo
        .prepare_worktree(&path, Some("omk/g/s"), &base, None, &[])
        .unwrap();
    assert_eq!(slot.dotgit_tampered(), None);
    assert_eq!(repo.slot(&path).unwrap(), Some(slot.clone()));

    // The agent points its `.git` at the user's repository and works on.
    let forged = format!("gitdir: {}\n", main.join(".git").display());
    std::fs::write(path.join(".git"), &forged).unwrap();
    std::fs::write(path.join("b.txt"), "b\n").unwrap();
    let tampered = slot.dotgit_tampered().unwrap();
    assert!(tampered.contains("rewritten"), "{tampered}");
    assert_eq!(
        repo.slot(&path).unwrap(),
        Some(slot.clone()),
        "found from the repository's side"
    );
    let done = repo
        .commit_worktree(&path, "omk/g/s", &base, "s")
        .unwrap()
        .unwrap();
    assert_eq!(done.changed_files, vec!["b.txt"]);
    // The user's HEAD and index are as they were; the slot's link is back.
    assert_eq!(git(&main, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(git(&main, &["rev-parse", "HEAD"]), base);
    assert_eq!(std::fs::read(main.join(".git/index")).unwrap(), index);
    assert_eq!(slot.dotgit_tampered(), None);
    assert_eq!(slot.head().unwrap(), done.commit);
    assert_eq!(slot.files_tree().unwrap(), done.tree);

    // A directory in its place is removed and the link written again.
    std::fs::remove_file(path.join(".git")).unwrap();
    std::fs::create_dir(path.join(".git")).unwrap();
    assert!(slot.dotgit_tampered().unwrap().contains("directory"));
    repo.prepare_worktree(&path, None, &base, None, &[])
        .unwrap();
    assert_eq!(slot.dotgit_tampered(), None);
    assert_eq!(files(&path), ["a.txt=a\n"]);
}

#[test]
fn a_locked_branch_is_waited_for_and_a_lock_a_dead_process_left_is_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    std::fs::create_dir_all(&main).unwrap();
    git(&main, &["init", "-q", "-b", "main"]);
    std::fs::write(main.join("a"), "1").unwrap();
    git(&main, &["add", "-A"]);
    git(&main, &["commit", "-qm", "one"]);
    let one = git(&main, &["rev-parse", "HEAD"]);
    std::fs::write(main.join("a"), "2").unwrap();
    git(&main, &["commit", "-qam", "two"]);
    let two = git(&main, &["rev-parse", "HEAD"]);
    let repo = Repo::discover(&main).unwrap();
    let name = "refs/heads/omk/g1/integration";
    repo.create_ref(name, &one, "t").unwrap();
    let lock = repo.common_dir.join(format!("{name}.lock"));
    let patience = std::time::Duration::from_millis(400);

    // Held by someone for a moment: waited for, then moved.
    std::fs::write(&lock, "").unwrap();
    let held = lock.clone();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        std::fs::remove_file(held).unwrap();
    });
    repo.update_ref_patiently(name, &two, &one, "t", patience)
        .unwrap();
    releaser.join().unwrap();
    assert_eq!(
        repo.ref_target(name).unwrap().as_deref(),
        Some(two.as_str())
    );

    // Left by a process that died: cleared after the wait, and moved.
    std::fs::write(&lock, "").unwrap();
    repo.update_ref_patiently(name, &one, &two, "t", patience)
        .unwrap();
    assert_eq!(
        repo.ref_target(name).unwrap().as_deref(),
        Some(one.as_str())
    );
    assert!(!lock.exists());

    // A branch someone moved is still refused, however patient.
    assert!(repo
        .update_ref_patiently(name, &two, &two, "t", patience)
        .is_err());
}
