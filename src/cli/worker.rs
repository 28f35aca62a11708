//! `omk worker`: runs one slice attempt a cluster job was given (see
//! `executor::worker`). The coordinator starts it through the scheduler;
//! people do not.

use std::path::{Path, PathBuf};

use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job directory the coordinator wrote.
    dir: PathBuf,
}

pub async fn run(_dir: &Path, args: Args) -> Result<u8> {
    crate::executor::worker::run(&args.dir).await?;
    Ok(0)
}
