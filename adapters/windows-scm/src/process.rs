//! Operating-system process helpers for processes identified by pid only (an
//! adopted orphan, or a process group): liveness, identity, stop requests.
//!
//! Unix: signals through `nix` (no `unsafe` here). Windows: `tasklist` and
//! `taskkill`, which come with every Windows installation.

#[cfg(unix)]
pub(crate) use unix::{is_alive, kill, request_stop, runs_from};
#[cfg(windows)]
pub(crate) use windows::{is_alive, kill, request_stop, runs_from};

#[cfg(unix)]
mod unix {
    use std::path::Path;

    use nix::errno::Errno;
    use nix::sys::signal::{self, Signal};
    use nix::unistd::{Pid, getpgid};

    fn pid_of(pid: u32) -> Option<Pid> {
        i32::try_from(pid)
            .ok()
            .filter(|p| *p > 0)
            .map(Pid::from_raw)
    }

    /// Whether `pid` is a process that has not ended (a zombie has ended).
    pub(crate) fn is_alive(pid: u32) -> bool {
        let Some(p) = pid_of(pid) else {
            return false;
        };
        match signal::kill(p, None) {
            Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
            Err(_) => false,
        }
    }

    #[cfg(target_os = "linux")]
    fn is_zombie(pid: u32) -> bool {
        // `/proc/<pid>/stat`: "pid (comm) S ...", comm may hold spaces and ')'.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        stat.rfind(')')
            .and_then(|at| stat[at + 1..].trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x'))
    }

    #[cfg(not(target_os = "linux"))]
    fn is_zombie(_pid: u32) -> bool {
        false
    }

    /// Whether `pid` runs from `dir`: on Linux, its executable, an argument
    /// of its command line (a script run by an interpreter) or its working
    /// directory lies in `dir`. Elsewhere there is no cheap way to tell, and
    /// the pid is taken as a hint: true.
    #[cfg(target_os = "linux")]
    pub(crate) fn runs_from(pid: u32, dir: &Path) -> bool {
        let mut dirs = vec![dir.to_path_buf()];
        if let Ok(canonical) = dir.canonicalize()
            && canonical != dir
        {
            dirs.push(canonical);
        }
        let inside = |path: &Path| dirs.iter().any(|d| path.starts_with(d));
        let proc_dir = Path::new("/proc").join(pid.to_string());
        if std::fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| inside(&exe)) {
            return true;
        }
        if let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline"))
            && cmdline
                .split(|b| *b == 0)
                .filter_map(|arg| std::str::from_utf8(arg).ok())
                .any(|arg| !arg.is_empty() && inside(Path::new(arg)))
        {
            return true;
        }
        std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| inside(&cwd))
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn runs_from(_pid: u32, _dir: &Path) -> bool {
        true
    }

    /// Sends `signal` to the process group led by `pid` (the supervisor
    /// starts the service as a group leader), or to `pid` alone if it leads
    /// no group.
    fn send(pid: u32, signal: Signal) {
        let Some(p) = pid_of(pid) else {
            return;
        };
        let result = if getpgid(Some(p)) == Ok(p) {
            signal::killpg(p, signal)
        } else {
            signal::kill(p, signal)
        };
        match result {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid, "cannot send {signal} to the service: {e}"),
        }
    }

    /// Asks the service to stop (`SIGTERM` to its group). Returns whether
    /// there is such a graceful request on this platform (true).
    pub(crate) fn request_stop(pid: u32) -> bool {
        send(pid, Signal::SIGTERM);
        true
    }

    /// Kills the service and its group (`SIGKILL`).
    pub(crate) fn kill(pid: u32) {
        send(pid, Signal::SIGKILL);
    }
}

#[cfg(windows)]
mod windows {
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// Whether `pid` is a running process (`tasklist`).
    pub(crate) fn is_alive(pid: u32) -> bool {
        let Ok(out) = Command::new("tasklist")
            .args(["/FI", &format!("PID eq {pid}"), "/FO", "CSV", "/NH"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            return false;
        };
        String::from_utf8_lossy(&out.stdout).contains(&format!("\"{pid}\""))
    }

    /// Windows: the pid is taken as a hint (no identity check).
    pub(crate) fn runs_from(_pid: u32, _dir: &Path) -> bool {
        true
    }

    /// There is no graceful stop request for a plain process on Windows
    /// (console control events need a shared console): false.
    pub(crate) fn request_stop(_pid: u32) -> bool {
        false
    }

    /// Kills the process and its children (`taskkill /F /T`).
    pub(crate) fn kill(pid: u32) {
        let status = Command::new("taskkill")
            .args(["/F", "/T", "/PID", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = status {
            tracing::warn!(pid, "cannot run taskkill: {e}");
        }
    }
}
