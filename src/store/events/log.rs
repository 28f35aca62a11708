//! The log on disk: the single writer (append, fsync, hash chain) and the
//! one reader ([`Scan`]), which says how much of a damaged log it trusts.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Event, EventBody};
use crate::error::{Error, IoContext, Result};

/// The single writer of a goal's event log.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
    next_seq: u64,
    last_hash: String,
}

/// The hex SHA-256 of one line (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl EventLog {
    /// Creates a new, empty log at `path`.
    pub fn create(path: &Path) -> Result<EventLog> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .context(|| format!("creating event log {}", path.display()))?;
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
            next_seq: 1,
            last_hash: String::new(),
        })
    }

    /// Opens an existing log to append to it, returning its events.
    ///
    /// A last line cut short by a crash (no newline, or not a complete
    /// event) was never acted upon, so it is dropped. A damaged line before
    /// the last is not a crash's doing: the log is refused, untouched.
    pub fn open(path: &Path) -> Result<(EventLog, Vec<Event>)> {
        let scan = Scan::of(path)?;
        scan.refuse_damage(path)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .context(|| format!("opening event log {}", path.display()))?;
        if scan.stop.is_some() {
            file.set_len(scan.good_len as u64)
                .and_then(|_| file.sync_all())
                .context(|| format!("dropping the torn last line of {}", path.display()))?;
        }
        let next_seq = scan.events.last().map_or(1, |e| e.seq + 1);
        let last_hash = scan.hashes.last().cloned().unwrap_or_default();
        Ok((
            EventLog {
                file,
                path: path.to_path_buf(),
                next_seq,
                last_hash,
            },
            scan.events,
        ))
    }

    /// Stamps `body`, appends it as one line and syncs it to disk.
    pub fn append(&mut self, body: EventBody) -> Result<Event> {
        let event = Event {
            seq: self.next_seq,
            ts: crate::store::events::log::now_rfc3339(),
            prev: self.last_hash.clone(),
            body,
        };
        let encode = |e: serde_json::Error| Error::json("encoding event", e);
        let mut json = serde_json::to_string(&event).map_err(encode)?;
        let mut event = event;
        // What agents and gates said is scrubbed, omk's own structure never
        // (the plan, scopes, ids, paths); `goal_started` is all structure.
        let scrub = !matches!(event.body, EventBody::GoalStarted { .. })
            && matches!(crate::redact::redact(&json), std::borrow::Cow::Owned(_));
        if scrub {
            let mut value = serde_json::to_value(&event).map_err(encode)?;
            if crate::redact::redact_json(&mut value) {
                json = serde_json::to_string(&value).map_err(encode)?;
                // The state folds exactly what the log holds.
                event = serde_json::from_value(value).map_err(encode)?;
            }
        }
        let mut line = json.into_bytes();
        let hash = line_hash(&line);
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .context(|| format!("appending to {}", self.path.display()))?;
        self.next_seq += 1;
        self.last_hash = hash;
        crate::fault::point("event");
        Ok(event)
    }

    /// The hash of the last line, for the proof to pin the log's end.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
}

/// The events of a log, for reading only (a goal that runs may be writing
/// its last line).
pub fn read(path: &Path) -> Result<Vec<Event>> {
    Scan::of(path)?.into_events(path)
}

/// Checks the log's chain: sequence numbers without gaps, each event
/// carrying the hash of the line before it. Returns every line's hash, or
/// the first break found.
pub fn check_chain(path: &Path) -> Result<Result<Vec<String>, String>> {
    let scan = Scan::of(path)?;
    Ok(scan.chain().map(|()| scan.hashes))
}

/// One reading of a log file, shared by [`EventLog::open`], [`read`] and
/// [`check_chain`], which differ only in what they tolerate.
#[derive(Debug)]
pub struct Scan {
    /// The whole, valid lines' events, in order, up to the first that is not.
    pub events: Vec<Event>,
    /// The SHA-256 of each of those lines, as written.
    pub hashes: Vec<String>,
    /// The bytes up to the end of the last of those lines.
    good_len: usize,
    /// Why reading stopped before the end of the file, if it did.
    pub stop: Option<Stop>,
}

/// Where and why a log's reading stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Line `line` (1-based) has no newline: the last, cut short.
    Torn { line: usize },
    /// Line `line` is not an event; `last` when nothing follows it.
    Invalid {
        line: usize,
        error: String,
        last: bool,
    },
}

impl Scan {
    /// Reads the log at `path`.
    pub fn of(path: &Path) -> Result<Scan> {
        let bytes =
            std::fs::read(path).context(|| format!("reading event log {}", path.display()))?;
        Ok(Scan::parse(&bytes))
    }

    /// Reads a log's bytes.
    pub fn parse(bytes: &[u8]) -> Scan {
        let mut scan = Scan {
            events: Vec::new(),
            hashes: Vec::new(),
            good_len: 0,
            stop: None,
        };
        for (i, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = raw.strip_suffix(b"\n") else {
                scan.stop = Some(Stop::Torn { line: i + 1 });
                break;
            };
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => {
                    scan.good_len += raw.len();
                    scan.hashes.push(line_hash(line));
                    scan.events.push(event);
                }
                Err(e) => {
                    scan.stop = Some(Stop::Invalid {
                        line: i + 1,
                        error: e.to_string(),
                        last: scan.good_len + raw.len() == bytes.len(),
                    });
                    break;
                }
            }
        }
        scan
    }

    /// The events, unless the log (at `path`) is damaged before its last line.
    pub fn into_events(self, path: &Path) -> Result<Vec<Event>> {
        self.refuse_damage(path)?;
        Ok(self.events)
    }

    /// Refuses a log damaged before its last line.
    fn refuse_damage(&self, path: &Path) -> Result<()> {
        match &self.stop {
            Some(Stop::Invalid {
                line,
                error,
                last: false,
            }) => Err(Error::Io {
                context: format!(
                    "event log {} line {line} is not a valid event ({error}), and more follows; omk leaves a damaged log as it is",
                    path.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::InvalidData),
            }),
            _ => Ok(()),
        }
    }

    /// The first break of the log's chain: a line that stopped the reading,
    /// a gap in the sequence numbers, or an event whose `prev` is not the
    /// hash of the line before it.
    pub fn chain(&self) -> Result<(), String> {
        for (i, event) in self.events.iter().enumerate() {
            if event.seq != i as u64 + 1 {
                return Err(format!(
                    "line {} has seq {}, expected {}",
                    i + 1,
                    event.seq,
                    i + 1
                ));
            }
            let before = match i {
                0 => "",
                _ => self.hashes[i - 1].as_str(),
            };
            if event.prev != before {
                return Err(format!(
                    "event {} does not follow the line before it (its prev hash differs): the log was edited",
                    event.seq
                ));
            }
        }
        match &self.stop {
            None => Ok(()),
            Some(Stop::Torn { line }) => Err(format!("line {line} is cut short (no newline)")),
            Some(Stop::Invalid { line, error, .. }) => {
                Err(format!("line {line} is not a valid event: {error}"))
            }
        }
    }
}

/// The current time as RFC 3339 in UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_else(|_| now.to_string())
}
