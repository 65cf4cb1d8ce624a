//! Scripts left over from a previous life of this runner. A runner killed with SIGKILL cannot stop
//! its scripts: they keep running as orphans in their own process groups. Before the restarted
//! runner takes work, it kills them, so the server's next attempt of a task never runs beside the
//! old one. Each script's process group id is kept in a pid file beside its working directory; a
//! group is killed only if one of its processes still carries that task's `BATON_TASK_ID`, so a
//! recycled process group id of an unrelated program is left alone.

use std::path::Path;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The pid file of a job, beside its working directory.
pub fn pid_file(root: &Path, task_id: i64, attempt: u32) -> std::path::PathBuf {
    root.join(format!("task-{task_id}-{attempt}.pid"))
}

/// Kills the process groups of leftover scripts under `root` and removes their files. Returns how
/// many groups were killed.
pub fn leftovers(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    let mut killed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix("task-").and_then(|n| n.strip_suffix(".pid")) else { continue };
        let Some(task_id) = stem.split('-').next().and_then(|t| t.parse::<i64>().ok()) else { continue };
        let pgid = std::fs::read_to_string(entry.path()).ok().and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(pgid) = pgid.filter(|p| *p > 1)
            && group_runs_task(pgid, task_id)
        {
            tracing::warn!(task_id, pgid, "killing a script left over from before this runner started");
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            killed += 1;
        }
        let _ = std::fs::remove_file(entry.path());
        let _ = std::fs::remove_file(root.join(format!("task-{stem}.sh")));
        let _ = std::fs::remove_dir_all(root.join(format!("task-{stem}")));
    }
    killed
}

/// Whether a live process in group `pgid` has `BATON_TASK_ID=<task_id>` in its environment.
fn group_runs_task(pgid: i32, task_id: i64) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    let marker = format!("BATON_TASK_ID={task_id}");
    procs.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok())).any(|pid| {
        process_group(pid) == Some(pgid)
            && std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
    })
}

/// The process group of `pid`, from `/proc/<pid>/stat` (the field after state and parent pid).
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn kills_a_leftover_group_and_cleans_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg("sleep 30 & wait")
            .env("BATON_TASK_ID", "41")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        std::fs::write(pid_file(dir.path(), 41, 1), pgid.to_string()).unwrap();
        std::fs::create_dir(dir.path().join("task-41-1")).unwrap();
        // Give bash a moment to start its child.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(leftovers(dir.path()), 1);
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "files left behind");
    }

    #[test]
    fn leaves_alone_a_group_that_is_not_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let mut child =
            std::process::Command::new("sleep").arg("30").env("BATON_TASK_ID", "7").process_group(0).spawn().unwrap();
        std::fs::write(pid_file(dir.path(), 8, 1), child.id().to_string()).unwrap();
        assert_eq!(leftovers(dir.path()), 0);
        assert!(child.try_wait().unwrap().is_none(), "an unrelated process was killed");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
