//! The sandbox's mounts, made by its init (see [`super::jail`]): `/proc`,
//! `/dev`, the view of the file system (kept trees taken with
//! `open_tree(2)` and moved back), host sockets covered.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::sys::{check, cstr};
use super::view::{Op, Step};

/// The device nodes a confined process gets, bound from the host's `/dev`.
pub(super) const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// `open_tree(2)` flag: a detached copy of the mount at the path.
const OPEN_TREE_CLONE: libc::c_uint = 1;

/// `move_mount(2)` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// `open_tree(2)`/`mount_setattr(2)` flag: the mounts below too.
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `mount_setattr(2)` attribute: read-only.
const MOUNT_ATTR_RDONLY: u64 = 1;

/// The mounts the command sees: nothing propagates back out, `/proc` shows
/// only this namespace, `/dev` holds [`DEVICES`] plus private `shm` and `pts`.
/// `landlock`: Landlock is applied next, which keeps anything from being
/// made in `/dev` whether or not it is mounted read-only.
pub(super) fn mount_view(landlock: bool) -> Result<(), String> {
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    // Detached copies of the host's nodes, taken before /dev is covered.
    let mut nodes = Vec::new();
    for name in DEVICES {
        let path = cstr(&format!("/dev/{name}"))?;
        // SAFETY: open_tree on a NUL-terminated path; returns a descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                path.as_ptr(),
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            )
        };
        if fd >= 0 {
            nodes.push((*name, fd as libc::c_int));
        }
    }
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755,size=1m"),
    )?;
    for (name, fd) in nodes {
        let target = format!("/dev/{name}");
        std::fs::File::create(&target).map_err(|e| format!("creating {target}: {e}"))?;
        move_tree(fd, Path::new(&target))?;
    }
    for (dir, mode) in [("/dev/shm", 0o1777), ("/dev/pts", 0o755)] {
        std::fs::create_dir(dir).map_err(|e| format!("creating {dir}: {e}"))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| format!("chmod {dir}: {e}"))?;
    }
    mount(
        Some("tmpfs"),
        "/dev/shm",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    // A pty of its own is a nicety (some tools want one); not every kernel
    // lets a user namespace mount devpts.
    if mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .is_ok()
    {
        let _ = std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx");
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, link).map_err(|e| format!("linking {link}: {e}"))?;
    }
    // Nothing more is created in /dev itself. The kernel refuses to make a
    // mount read-only while it counts a write to it in flight (EBUSY), and
    // under load that was seen to last: it is tried again, and given up
    // when Landlock, applied next, forbids writing /dev anyway (it is this
    // namespace's own tmpfs either way).
    match read_only("/dev", libc::MS_NOSUID | libc::MS_NOEXEC, 50) {
        Err(ReadOnly::Busy(_)) if landlock => Ok(()),
        Err(e) => Err(e.said()),
        Ok(()) => Ok(()),
    }
}

/// Builds the view: each step in order, parents first. The trees to bind
/// back are all taken before anything is hidden. Returns the hidden
/// directories the command may write (its private `/tmp`, `/var/tmp` and
/// home).
pub(super) fn build_view(steps: &[Step]) -> Result<Vec<std::path::PathBuf>, String> {
    let taken: Vec<Option<libc::c_int>> = steps
        .iter()
        .map(|s| match s.op {
            Op::Keep { writable } => take_tree(&s.path, writable),
            Op::Hide { .. } => None,
        })
        .collect();
    let mut scratch = Vec::new();
    for (step, fd) in steps.iter().zip(taken) {
        let path = &step.path;
        let shown = path.display();
        match step.op {
            Op::Hide { writable } => {
                if std::fs::symlink_metadata(path).is_err() {
                    std::fs::create_dir_all(path).map_err(|e| format!("creating {shown}: {e}"))?;
                }
                let mode = match writable {
                    true => "mode=1777",
                    false => "mode=0755,size=1m",
                };
                mount(
                    Some("tmpfs"),
                    &path.to_string_lossy(),
                    Some("tmpfs"),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    Some(mode),
                )?;
                if writable {
                    scratch.push(path.clone());
                }
            }
            Op::Keep { .. } => {
                let Some(fd) = fd else { continue };
                if std::fs::symlink_metadata(path).is_err() {
                    // SAFETY: fstat on the descriptor open_tree gave.
                    let mut st: libc::stat = unsafe { std::mem::zeroed() };
                    // SAFETY: fstat writes `st`.
                    let is_dir = unsafe { libc::fstat(fd, &mut st) } == 0
                        && st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                    let made = match is_dir {
                        true => std::fs::create_dir_all(path),
                        false => path
                            .parent()
                            .map_or(Ok(()), std::fs::create_dir_all)
                            .and_then(|()| std::fs::File::create(path).map(drop)),
                    };
                    made.map_err(|e| format!("making room for {shown}: {e}"))?;
                }
                move_tree(fd, path)?;
            }
        }
    }
    // A hidden place that is not scratch space is read-only once what it
    // holds is bound in: beneath a writable `/tmp`, Landlock alone would
    // let the command write it.
    for step in steps {
        if step.op == (Op::Hide { writable: false }) {
            read_only(
                &step.path.to_string_lossy(),
                libc::MS_NOSUID | libc::MS_NODEV,
                200,
            )
            .map_err(ReadOnly::said)?;
        }
    }
    Ok(scratch)
}

/// A detached copy of the mounts at `path` (read-only unless `writable`),
/// or `None` when it is not there.
fn take_tree(path: &Path, writable: bool) -> Option<libc::c_int> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: open_tree on a NUL-terminated path; returns a descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    } as libc::c_int;
    if fd < 0 {
        return None;
    }
    if !writable {
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let empty = c"";
        // SAFETY: mount_setattr on the detached tree, with a sized attr.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                empty.as_ptr(),
                (libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE) as libc::c_uint,
                &attr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r != 0 {
            // Not read-only means not bound back at all.
            // SAFETY: closing our descriptor.
            unsafe { libc::close(fd) };
            return None;
        }
    }
    Some(fd)
}

/// Attaches a tree from [`take_tree`] at `path`.
fn move_tree(fd: libc::c_int, path: &Path) -> Result<(), String> {
    let target = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("a NUL byte in {}", path.display()))?;
    let empty = c"";
    // SAFETY: move_mount of a descriptor from open_tree onto a path.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    // SAFETY: closing the descriptor open_tree gave.
    unsafe { libc::close(fd) };
    check(moved as libc::c_int, &format!("binding {}", path.display()))
}

/// The pathname sockets bound in this network namespace, from `/proc/net/unix`.
pub(super) fn host_sockets() -> Vec<std::path::PathBuf> {
    let Ok(table) = std::fs::read("/proc/net/unix") else {
        return vec![];
    };
    table
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(socket_path)
        .collect()
}

/// The path of one `/proc/net/unix` line (`Num RefCount Protocol Flags Type
/// St Inode Path`): what follows the seventh field, which may hold spaces.
fn socket_path(line: &[u8]) -> Option<std::path::PathBuf> {
    let mut rest = line;
    for _ in 0..7 {
        let start = rest.iter().position(|b| *b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| *b == b' ')?;
        rest = &rest[end..];
    }
    let path = &rest[rest.iter().position(|b| *b != b' ')?..];
    path.starts_with(b"/")
        .then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path)))
}

/// Covers each host socket still in sight with `/dev/null`, so nothing can
/// connect to it.
pub(super) fn cover_sockets(sockets: &[std::path::PathBuf]) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    for path in sockets {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !meta.file_type().is_socket() {
            continue;
        }
        let covered = mount(
            Some("/dev/null"),
            &path.to_string_lossy(),
            None,
            libc::MS_BIND,
            None,
        );
        // A socket removed since it was listed needs no cover.
        if covered.is_err() && std::fs::symlink_metadata(path).is_ok() {
            return covered.map_err(|e| format!("{e} (covering the host's socket)"));
        }
    }
    Ok(())
}

/// Why [`read_only`] could not make a mount read-only.
enum ReadOnly {
    /// The kernel still counted a write in flight after every try.
    Busy(String),
    /// Anything else.
    Failed(String),
}

impl ReadOnly {
    /// What went wrong, in words.
    fn said(self) -> String {
        match self {
            ReadOnly::Busy(e) | ReadOnly::Failed(e) => format!("{e} (making it read-only)"),
        }
    }
}

/// Makes the mount at `target` read-only. The kernel refuses while it
/// counts a write to the mount in flight (EBUSY), which under load was seen
/// to last a while: tried again `tries` times, 10 ms apart.
fn read_only(target: &str, flags: libc::c_ulong, tries: u32) -> Result<(), ReadOnly> {
    let mut tried = 0;
    loop {
        let made = mount(
            None,
            target,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
            None,
        );
        // `mount` failed just now, so errno is its.
        let busy = std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY);
        match made {
            Err(_) if busy && tried < tries => {
                tried += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) if busy => return Err(ReadOnly::Busy(e)),
            Err(e) => return Err(ReadOnly::Failed(e)),
            Ok(()) => return Ok(()),
        }
    }
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let c = |s: Option<&str>| s.map(cstr).transpose();
    let (source, target_c, fstype, data) = (c(source)?, cstr(target)?, c(fstype)?, c(data)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: mount with NUL-terminated strings or NULLs.
    let r = unsafe {
        libc::mount(
            ptr(&source),
            target_c.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    check(r, &format!("mounting {target}"))
}
