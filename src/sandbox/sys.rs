//! The system calls' small helpers the sandbox helper's two halves share.

use std::ffi::CString;
use std::path::Path;

pub(super) fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(Path::new(path), text).map_err(|e| format!("writing {path}: {e}"))
}

pub(super) fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("a NUL byte in {s:?}"))
}

pub(super) fn check(r: libc::c_int, what: &str) -> Result<(), String> {
    if r == -1 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}
