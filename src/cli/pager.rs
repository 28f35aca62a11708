//! What a person reads on a terminal goes through a pager, as git's output
//! does; into a pipe or a file it goes raw.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use crate::error::{IoContext, Result};

/// Writes `text` to stdout: through `$OMK_PAGER`, else `$PAGER`, else
/// `less` (with `LESS=FRX` unless set: quit when it fits, keep colours)
/// when stdout is a terminal; directly otherwise, or when the pager is
/// `cat`, empty or cannot start.
pub fn show(mut text: impl Read) -> Result<()> {
    let pager = std::env::var("OMK_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".into());
    if std::io::stdout().is_terminal() && !matches!(pager.trim(), "" | "cat") {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&pager).stdin(Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            cmd.env("LESS", "FRX");
        }
        if let Ok(mut child) = cmd.spawn() {
            if let Some(mut stdin) = child.stdin.take() {
                // The reader quitting early is not an error.
                let _ = std::io::copy(&mut text, &mut stdin);
            }
            let _ = child.wait();
            return Ok(());
        }
    }
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut text, &mut out).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map(|_| ()).context(|| "writing to stdout".to_string()),
    }
}
