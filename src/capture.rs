//! A child's output, captured into a bounded log through a pipe.
//!
//! An agent or a gate may print gigabytes. What it writes goes through a
//! pipe to a pump thread that keeps the first half of the limit in the log
//! and the last part in two alternating tail files, so disk use and omk's
//! memory stay bounded whatever it prints. When the child is done the tail
//! is appended after a marker saying how much was dropped, and the log is
//! scrubbed of secrets as a stream.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// How much of a child's output a log keeps by default: 64 MiB.
pub const DEFAULT_LIMIT: u64 = 64 << 20;

/// The limit logs started from now on keep (`[run] log_limit`).
static LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_LIMIT);

/// Sets how much of a child's output each log keeps.
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1024), Ordering::Relaxed);
}

/// How long a finished child's output may take to drain (a process it left
/// behind may hold the pipe open).
const DRAIN: Duration = Duration::from_secs(2);

/// A log being written by a child.
pub struct Capture {
    path: PathBuf,
    /// omk's copy of the pipe's write end, handed to the child.
    writer: File,
    /// Bytes the child wrote so far: its sign of life.
    written: Arc<AtomicU64>,
    /// Tells the pump to stop waiting for writers that never close.
    stop: Arc<AtomicBool>,
    pump: std::thread::JoinHandle<std::io::Result<Kept>>,
}

/// What the pump kept.
struct Kept {
    total: u64,
    head: u64,
    /// The tail files, older first, with their lengths.
    tails: Vec<(PathBuf, u64)>,
}

impl Capture {
    /// Starts a log at `path` (created or truncated).
    pub fn start(path: &Path) -> Result<Capture> {
        let log = open_log(path)?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::io(
                "creating a pipe",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: both descriptors were just created and are owned here only.
        let (reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let limit = LIMIT.load(Ordering::Relaxed);
        let (written, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let pump = {
            let (path, written, stop) = (path.to_path_buf(), written.clone(), stop.clone());
            std::thread::Builder::new()
                .name("omk-capture".into())
                .spawn(move || pump(reader, log, &path, limit, &written, &stop))
                .map_err(|e| Error::io("starting a log pump", e))?
        };
        Ok(Capture {
            path: path.to_path_buf(),
            writer,
            written,
            stop,
            pump,
        })
    }

    /// A handle the child writes its stdout or stderr to.
    pub fn stdio(&self) -> Result<Stdio> {
        let copy = self
            .writer
            .try_clone()
            .context(|| format!("opening {}", self.path.display()))?;
        Ok(Stdio::from(copy))
    }

    /// A writer for omk's own lines in the same log (a protocol
    /// transcript beside the child's stderr), bounded with it. Close it
    /// before [`Capture::finish`], which waits for every writer.
    pub fn transcript(&self) -> Result<Transcript> {
        let copy = self
            .writer
            .try_clone()
            .context(|| format!("opening {}", self.path.display()))?;
        Ok(Transcript(std::sync::Mutex::new(Some(copy))))
    }

    /// The count of bytes the child wrote so far.
    pub fn written(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    /// Waits for the child's output to drain, then assembles the log (head,
    /// marker, tail) and scrubs it. Call once the child has exited.
    pub async fn finish(self) -> Result<()> {
        let Capture {
            path,
            writer,
            stop,
            pump,
            ..
        } = self;
        drop(writer);
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + DRAIN;
            while !pump.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
            let kept = match pump.join() {
                Ok(Ok(kept)) => kept,
                Ok(Err(e)) => return Err(Error::io(format!("capturing {}", path.display()), e)),
                Err(_) => return Err(Error::Task("the log pump panicked".into())),
            };
            assemble(&path, &kept)?;
            crate::redact::redact_file(&path)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }
}

/// omk's side of a conversation with a child, one scrubbed line per
/// message, written into the child's [`Capture`].
pub struct Transcript(std::sync::Mutex<Option<File>>);

impl Transcript {
    /// Writes `direction` (`->` or `<-`) and `line`, scrubbed, as one line.
    pub fn note(&self, direction: &str, line: &str) {
        if let Ok(mut file) = self.0.lock() {
            if let Some(f) = file.as_mut() {
                let text = format!("{direction} {}\n", crate::redact::redact(line));
                let _ = f.write_all(text.as_bytes());
            }
        }
    }

    /// Stops writing: the capture's pump no longer waits for this writer.
    pub fn close(&self) {
        if let Ok(mut file) = self.0.lock() {
            file.take();
        }
    }
}

/// Copies the pipe into the log until every writer closed it (or `stop`):
/// the first half of `limit` into the log, the rest into two tail files
/// that take turns, each a quarter of `limit`.
fn pump(
    mut reader: File,
    mut log: File,
    path: &Path,
    limit: u64,
    written: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<Kept> {
    let head_limit = limit / 2;
    let chunk_limit = (limit / 4).max(1);
    let tail_paths = [0, 1].map(|i| tail_path(path, i));
    let mut tails: [Option<(File, u64)>; 2] = [None, None];
    let mut current = 0;
    let (mut total, mut head) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Wait for data a tenth of a second at a time, to notice `stop`.
        let mut pfd = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready == 0 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        written.store(total, Ordering::Relaxed);
        let mut data = &buf[..n];
        if head < head_limit {
            let take = data.len().min((head_limit - head) as usize);
            log.write_all(&data[..take])?;
            head += take as u64;
            data = &data[take..];
        }
        while !data.is_empty() {
            let full = tails[current]
                .as_ref()
                .is_some_and(|(_, len)| *len >= chunk_limit);
            if full {
                current = 1 - current;
                tails[current] = None;
            }
            if tails[current].is_none() {
                tails[current] = Some((File::create(&tail_paths[current])?, 0));
            }
            let Some((file, len)) = tails[current].as_mut() else {
                break;
            };
            let take = data.len().min((chunk_limit - *len) as usize);
            file.write_all(&data[..take])?;
            *len += take as u64;
            data = &data[take..];
        }
    }
    log.flush()?;
    // Older first: the one not being written, then the current one.
    let order = [1 - current, current];
    let kept = order
        .iter()
        .filter_map(|&i| {
            tails[i]
                .as_ref()
                .map(|(_, len)| (tail_paths[i].clone(), *len))
        })
        .collect();
    Ok(Kept {
        total,
        head,
        tails: kept,
    })
}

fn tail_path(path: &Path, i: usize) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tail{i}"));
    path.with_file_name(name)
}

/// Appends the marker and the tail to the head, and removes the tail files.
fn assemble(path: &Path, kept: &Kept) -> Result<()> {
    if kept.tails.is_empty() {
        return Ok(());
    }
    let tail: u64 = kept.tails.iter().map(|(_, len)| len).sum();
    let dropped = kept.total - kept.head - tail;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .context(|| format!("opening {}", path.display()))?;
    let marker = format!(
        "\n[omk: {dropped} bytes of output dropped here; the log keeps the first {} and the last {tail} of {} bytes]\n",
        kept.head, kept.total
    );
    let mut copy = || -> std::io::Result<()> {
        log.write_all(marker.as_bytes())?;
        for (tail_file, _) in &kept.tails {
            std::io::copy(&mut File::open(tail_file)?, &mut log)?;
        }
        log.flush()
    };
    copy().context(|| format!("writing {}", path.display()))?;
    for i in 0..2 {
        let _ = std::fs::remove_file(tail_path(path, i));
    }
    Ok(())
}

/// Creates (or truncates) a log file, with its directory.
pub fn open_log(path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::File::create(path).context(|| format!("creating log {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `bytes` into a capture with `limit`, as a child would.
    async fn capture(limit: u64, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        LIMIT.store(limit, Ordering::Relaxed);
        let capture = Capture::start(&path).unwrap();
        LIMIT.store(DEFAULT_LIMIT, Ordering::Relaxed);
        let mut child_end = capture.writer.try_clone().unwrap();
        child_end.write_all(bytes).unwrap();
        drop(child_end);
        capture.finish().await.unwrap();
        assert!(!tail_path(&path, 0).exists() && !tail_path(&path, 1).exists());
        std::fs::read_to_string(&path).unwrap()
    }

    #[tokio::test]
    async fn output_within_the_limit_is_kept_whole() {
        assert_eq!(
            capture(1 << 20, b"line one\nline two\n").await,
            "line one\nline two\n"
        );
    }

    #[tokio::test]
    async fn big_output_keeps_its_head_and_tail_around_a_marker() {
        let mut out = b"FIRST LINE\n".to_vec();
        out.extend(std::iter::repeat_n(b'x', 1 << 20));
        out.extend(b"\nLAST LINE\n");
        let log = capture(64 << 10, &out).await;
        assert!(log.len() < (64 << 10) + 200, "{} bytes kept", log.len());
        assert!(log.starts_with("FIRST LINE\n"));
        assert!(log.ends_with("\nLAST LINE\n"));
        let marker = log.lines().find(|l| l.starts_with("[omk: ")).unwrap();
        assert!(marker.contains("bytes of output dropped here"), "{marker}");
        assert!(
            marker.contains(&format!("of {} bytes", out.len())),
            "{marker}"
        );
    }
}
