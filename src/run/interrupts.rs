//! SIGINT and SIGTERM for the process that drives a goal.
//!
//! They are listened for from before the goal's lock is taken: from the
//! moment `goal cancel` can see this process as the goal's holder, a signal
//! is kept for the supervisor as a cancel instead of killing the controller
//! with its default action (a detached goal cancelled at once was left
//! `running` by a controller that died before it listened).

use std::sync::OnceLock;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Mutex;

struct Streams {
    int: Signal,
    term: Signal,
}

static STREAMS: OnceLock<Option<Mutex<Streams>>> = OnceLock::new();

/// Starts listening, once per process; a signal that arrives before anyone
/// waits is kept for [`next`]. Must run inside the tokio runtime.
pub(super) fn listen() {
    STREAMS.get_or_init(|| {
        let (Ok(int), Ok(term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return None;
        };
        Some(Mutex::new(Streams { int, term }))
    });
}

/// Waits for the next SIGINT or SIGTERM (for ever when they cannot be
/// listened for).
pub(super) async fn next() {
    listen();
    let Some(Some(streams)) = STREAMS.get() else {
        return std::future::pending().await;
    };
    let mut streams = streams.lock().await;
    let Streams { int, term } = &mut *streams;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
