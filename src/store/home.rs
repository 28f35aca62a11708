//! Where omk keeps its state: a leaf, so that the sandbox can hide it
//! without depending on the store.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// omk's state home.
pub fn home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("OMK_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("omk"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/omk")),
        None => Err(Error::Usage(
            "cannot place omk's state: set OMK_HOME (or HOME) to a writable directory".into(),
        )),
    }
}
