//! One watcher per goal for its Slurm jobs.
//!
//! Each attempt polling `scontrol show job` every 250 ms sent a goal of 20
//! jobs' 1,181 requests to the controller in 31 s; a shared cluster's
//! admins throttle (or ban) clients that do that. The goal's attempts
//! instead tell one task the job ids they recorded at submission, and it
//! asks the controller about all of them at once (`squeue --me --jobs
//! <ids>`): about once a second while one runs, every few seconds while
//! they only queue, at once when an attempt's worker wrote its report, and
//! less often while the controller does not answer. A job that leaves the
//! queue is asked about once more, alone (`scontrol show job`), for how it
//! ended.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// The goal's job watcher; clones share it. Its task ends with the last.
#[derive(Debug, Clone)]
pub struct Watcher {
    watch: mpsc::UnboundedSender<Watched>,
}

/// A job an attempt waits for.
#[derive(Debug)]
struct Watched {
    id: String,
    /// The worker's report: its appearance means the job is ending.
    report: PathBuf,
    ended: oneshot::Sender<String>,
}

/// How often the queue is read while a job runs, while they only queue,
/// and at most while the controller does not answer.
const RUNNING: Duration = Duration::from_secs(1);
const QUEUED: Duration = Duration::from_secs(3);
const UNANSWERED: Duration = Duration::from_secs(30);
/// How often the reports are looked for between reads of the queue.
const LOOK: Duration = Duration::from_millis(250);

impl Watcher {
    /// Starts the watcher on the current runtime.
    pub fn start() -> Watcher {
        let (watch, jobs) = mpsc::unbounded_channel();
        tokio::spawn(watch_jobs(jobs));
        Watcher { watch }
    }

    /// Waits until job `id` (whose worker reports to `report`) has left
    /// the queue; returns how it ended (`COMPLETED`, `CANCELLED`, … or
    /// `gone` when Slurm forgot it).
    pub async fn ended(&self, id: &str, report: PathBuf) -> String {
        let (ended, said) = oneshot::channel();
        let watched = Watched {
            id: id.to_string(),
            report,
            ended,
        };
        if self.watch.send(watched).is_err() {
            return "the job watcher stopped".into();
        }
        said.await
            .unwrap_or_else(|_| "the job watcher stopped".into())
    }
}

/// The watcher's task: reads the queue for every watched job at once, at
/// the pace [`Pace`] sets, and tells each attempt its job's end.
async fn watch_jobs(mut jobs: mpsc::UnboundedReceiver<Watched>) {
    let mut watched: HashMap<String, Watched> = HashMap::new();
    let mut pace = Pace::default();
    // The jobs whose reports were there at the last read.
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        // Wait for the next read: its interval, or a new report.
        let mut waited = Duration::ZERO;
        let new_report = |watched: &HashMap<String, Watched>, reported: &HashSet<String>| {
            watched
                .iter()
                .any(|(id, w)| !reported.contains(id) && w.report.exists())
        };
        while waited < pace.interval() && !new_report(&watched, &reported) {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => { watched.insert(job.id.clone(), job); }
                    None if watched.is_empty() => return,
                    None => {}
                },
                _ = tokio::time::sleep(LOOK) => waited += LOOK,
            }
            // Attempts that stopped waiting (cancelled) need no answer.
            watched.retain(|_, w| !w.ended.is_closed());
        }
        if watched.is_empty() {
            match jobs.recv().await {
                Some(job) => {
                    watched.insert(job.id.clone(), job);
                    continue;
                }
                None => return,
            }
        }
        let ids: Vec<String> = watched.keys().cloned().collect();
        reported = watched
            .iter()
            .filter(|(_, w)| w.report.exists())
            .map(|(id, _)| id.clone())
            .collect();
        let Some(queued) = queue(&ids).await else {
            pace.unanswered();
            continue;
        };
        pace.answered(queued.values().any(|s| s == "RUNNING"));
        for id in ids.iter().filter(|id| !queued.contains_key(*id)) {
            // Gone from the queue: how did it end? (Asked alone, once.)
            if let JobState::Ended(how) = state(id).await {
                if let Some(w) = watched.remove(id) {
                    let _ = w.ended.send(how);
                }
            }
        }
    }
}

/// The watched jobs the queue still has, with their states; `None` when
/// the controller did not answer.
async fn queue(ids: &[String]) -> Option<HashMap<String, String>> {
    let out = tokio::process::Command::new("squeue")
        .args(["--me", "-h", "-o", "%i %T", "--jobs"])
        .arg(ids.join(","))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Every id unknown (all of them left the queue) is an answer.
        let err = String::from_utf8_lossy(&out.stderr);
        return err.contains("Invalid job id").then(HashMap::new);
    }
    Some(
        text.lines()
            .filter_map(|l| l.trim().split_once(' '))
            .filter(|(id, _)| ids.iter().any(|i| i == id))
            .map(|(id, s)| (id.to_string(), s.trim().to_string()))
            .collect(),
    )
}

/// How a job stands, as `scontrol` says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobState {
    /// Pending or running: wait.
    Active,
    /// It ended (`COMPLETED`, `FAILED`, `CANCELLED`, `NODE_FAIL`, …), or
    /// Slurm forgot it.
    Ended(String),
}

/// The state of job `id`.
async fn state(id: &str) -> JobState {
    let out = tokio::process::Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let Ok(out) = out else {
        return JobState::Ended("scontrol could not run".into());
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let state = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .map(str::to_string);
    match state.as_deref() {
        Some(
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
            | "RESIZING" | "SIGNALING" | "STAGE_OUT",
        ) => JobState::Active,
        Some(ended) => JobState::Ended(ended.to_string()),
        // Purged (past MinJobAge) or never known.
        None if !out.status.success() => JobState::Ended("gone".into()),
        None => JobState::Active,
    }
}

/// How long the watcher waits between reads of the queue.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Pace {
    /// Whether a watched job ran at the last answer.
    running: bool,
    /// Reads in a row the controller did not answer.
    unanswered: u32,
}

impl Pace {
    fn interval(&self) -> Duration {
        match (self.unanswered, self.running) {
            (0, true) => RUNNING,
            (0, false) => QUEUED,
            (n, _) => (RUNNING * 2u32.saturating_pow(n)).min(UNANSWERED),
        }
    }

    fn answered(&mut self, running: bool) {
        *self = Pace {
            running,
            unanswered: 0,
        };
    }

    fn unanswered(&mut self) {
        self.unanswered = self.unanswered.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_read_each_second_while_jobs_run_less_often_otherwise() {
        let mut pace = Pace::default();
        assert_eq!(pace.interval(), QUEUED);
        pace.answered(true);
        assert_eq!(pace.interval(), RUNNING);
        pace.unanswered();
        assert_eq!(pace.interval(), Duration::from_secs(2));
        for _ in 0..10 {
            pace.unanswered();
        }
        assert_eq!(pace.interval(), UNANSWERED, "backed off, bounded");
        pace.answered(false);
        assert_eq!(pace.interval(), QUEUED);
    }
}
