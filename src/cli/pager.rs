//! What a person reads on a terminal goes through a pager, as git's output
//! does; into a pipe or a file it goes raw.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use crate::error::{IoContext, Result};

/// Writes `text` to stdout: through `$OMK_PAGER`, else `$PAGER`, else
/// `less` (with `LESS=FRX` unless set: quit when it fits, keep colours)
/// when stdout is a terminal; directly otherwise, or when the pager is
/// `cat`, empty or cannot start.
///
/// On a terminal, what agents and gates wrote keeps its colours but no
/// other escape sequence: it cannot write the clipboard, make links, set
/// the title or clear the screen ([`crate::shown::sgr_only`]).
pub fn show(text: impl Read) -> Result<()> {
    let pager = std::env::var("OMK_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".into());
    let terminal = std::io::stdout().is_terminal();
    let mut text: Box<dyn Read> = match terminal {
        true => {
            let mut raw = Vec::new();
            let mut text = text;
            text.read_to_end(&mut raw)
                .context(|| "reading what to show".to_string())?;
            Box::new(std::io::Cursor::new(crate::shown::sgr_only(&raw)))
        }
        false => Box::new(text),
    };
    if terminal && !matches!(pager.trim(), "" | "cat") {
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
