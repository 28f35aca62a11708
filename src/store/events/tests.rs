//! The log's one reader on torn, damaged and edited logs.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

fn log_of(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut log = EventLog::create(&path).unwrap();
    for i in 0..n {
        log.append(EventBody::BudgetExhausted {
            reason: format!("r{i}"),
        })
        .unwrap();
    }
    (dir, path)
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn a_torn_last_line_is_dropped_and_the_log_goes_on_from_the_line_before() {
    let (_dir, path) = log_of(3);
    let whole = std::fs::read(&path).unwrap();
    append_raw(&path, br#"{"seq":4,"ts":"x","kind":"budg"#);
    assert!(check_chain(&path)
        .unwrap()
        .unwrap_err()
        .contains("line 4 is cut short"));
    assert_eq!(read(&path).unwrap().len(), 3, "a reader skips it");

    let (mut log, events) = EventLog::open(&path).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        whole,
        "cut back to the whole lines"
    );
    let next = log
        .append(EventBody::BudgetExhausted {
            reason: "r3".into(),
        })
        .unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(check_chain(&path).unwrap().unwrap().len(), 4);
}

#[test]
fn a_damaged_line_before_the_last_is_refused_and_left_as_it_is() {
    let (_dir, path) = log_of(1);
    append_raw(&path, b"not an event\n");
    let (_d2, other) = log_of(2);
    let second = std::fs::read_to_string(&other).unwrap();
    append_raw(&path, second.lines().nth(1).unwrap().as_bytes());
    append_raw(&path, b"\n");
    let before = std::fs::read(&path).unwrap();

    let err = EventLog::open(&path).unwrap_err().to_string();
    assert!(err.contains("line 2 is not a valid event"), "{err}");
    assert!(read(&path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was cut");
    let broken = check_chain(&path).unwrap().unwrap_err();
    assert!(broken.contains("line 2 is not a valid event"), "{broken}");
}

#[test]
fn an_edited_line_breaks_the_chain_at_the_next_event() {
    let (_dir, path) = log_of(3);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"r1\"", "\"R1\"", 1)).unwrap();
    let broken = check_chain(&path).unwrap().unwrap_err();
    assert!(broken.starts_with("event 3 does not follow"), "{broken}");
    assert_eq!(
        read(&path).unwrap().len(),
        3,
        "every line is still an event"
    );
}
