//! Running one script: in a fresh working directory, in its own process group, with a clean
//! environment (the runner's own, minus every `BATON_` variable, plus the task's), stdout and
//! stderr read line by line (`lines.rs`) into the task's sink (`sink.rs`). Cancellation, timeout and shutdown end the whole process group with
//! SIGTERM and, after a grace period, SIGKILL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::{Outcome, Stream};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::held::Reservation;
use crate::lines::Pipe;
use crate::mask::Masker;
use crate::sink::Sink;

/// Why a script is being stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    /// The runner is shutting down: the attempt counts as lost.
    Interrupted,
    /// The task is no longer ours: kill at once.
    Fenced,
}

/// Tells a running script to stop.
#[derive(Debug, Clone, Default)]
pub struct Control {
    token: CancellationToken,
    reason: std::sync::Arc<std::sync::Mutex<Option<StopReason>>>,
}

impl Control {
    pub fn stop(&self, why: StopReason) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        // Fencing wins over everything; otherwise the first reason sticks.
        if r.is_none() || why == StopReason::Fenced {
            *r = Some(why);
        }
        self.token.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What to run.
#[derive(Clone)]
pub struct Job {
    pub task_id: i64,
    pub attempt: u32,
    pub project_id: i64,
    pub template_id: i64,
    pub script: String,
    pub shell: String,
    pub env: HashMap<String, String>,
    /// Secret variables: in the environment like `env`, masked in every line.
    pub secrets: HashMap<String, String>,
    pub timeout: Option<Duration>,
}

/// Shows the names of the secrets, never their values.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Job { task_id, attempt, project_id, template_id, script, shell, env, secrets, timeout } = self;
        f.debug_struct("Job")
            .field("task_id", task_id)
            .field("attempt", attempt)
            .field("project_id", project_id)
            .field("template_id", template_id)
            .field("script", script)
            .field("shell", shell)
            .field("env", env)
            .field("secrets", &secrets.keys().collect::<Vec<_>>())
            .field("timeout", timeout)
            .finish()
    }
}

/// What the script does, as it happens.
#[derive(Debug)]
pub enum Event {
    Started,
    /// A line and the bytes it holds against the runner's bounds until it is acknowledged.
    Line {
        stream: Stream,
        text: String,
        held: Option<Reservation>,
    },
    Exited {
        outcome: Outcome,
        exit_code: Option<i32>,
        error: String,
    },
}

/// A script to run, and everything running it needs.
#[derive(Debug)]
pub struct Exec {
    pub job: Job,
    pub dirs: Dirs,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    pub control: Control,
    pub sink: Arc<Sink>,
}

impl Exec {
    /// Runs the script to its end, reporting through the sink. Never panics on script behaviour.
    pub async fn run(self) {
        let masker = Arc::new(Masker::new(self.job.secrets.values()));
        let (outcome, exit_code, error) = match spawn_and_wait(&self, &masker).await {
            Ok(end) => end,
            Err(e) => (Outcome::Failed, None, format!("cannot start the script: {e}")),
        };
        if let Some(t) = self.sink.truncation() {
            self.sink.system(t);
        }
        let error = masker.mask(&error).into_owned();
        if !error.is_empty() {
            self.sink.system(error.clone());
        }
        self.sink.event(Event::Exited { outcome, exit_code, error });
        self.dirs.remove(&self.job);
    }
}

/// Where a job's files go.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub root: PathBuf,
}

impl Dirs {
    fn workdir(&self, job: &Job) -> PathBuf {
        self.root.join(format!("task-{}-{}", job.task_id, job.attempt))
    }

    /// The script lives beside the working directory, so the directory starts empty.
    fn script(&self, job: &Job) -> PathBuf {
        self.root.join(format!("task-{}-{}.sh", job.task_id, job.attempt))
    }

    fn remove(&self, job: &Job) {
        let _ = std::fs::remove_dir_all(self.workdir(job));
        let _ = std::fs::remove_file(self.script(job));
        let _ = std::fs::remove_file(crate::reap::pid_file(&self.root, job.task_id, job.attempt));
    }
}

type End = (Outcome, Option<i32>, String);

/// Why the script ended early: `Some(None)` is the timeout.
type Why = Option<Option<StopReason>>;

async fn spawn_and_wait(x: &Exec, masker: &Arc<Masker>) -> std::io::Result<End> {
    let Exec { job, dirs, kill_grace, control, sink } = x;
    let workdir = dirs.workdir(job);
    let _ = std::fs::remove_dir_all(&workdir);
    std::fs::create_dir_all(&workdir)?;
    let script = dirs.script(job);
    std::fs::write(&script, &job.script)?;
    let mut cmd = command(job, &workdir, &script);
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let Some(pg) = pgid {
        // Lets a restarted runner find and kill this group if the runner dies first.
        std::fs::write(crate::reap::pid_file(&dirs.root, job.task_id, job.attempt), pg.to_string())?;
    }
    sink.event(Event::Started);
    let ended = CancellationToken::new();
    let pipe = |stream| Pipe { stream, masker: masker.clone(), sink: sink.clone(), ended: ended.clone() };
    let readers = [
        child.stdout.take().map(|r| tokio::spawn(pipe(Stream::Stdout).read(r))),
        child.stderr.take().map(|r| tokio::spawn(pipe(Stream::Stderr).read(r))),
    ];
    let timeout = async {
        match job.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let mut why: Why = None;
    let status = tokio::select! {
        s = child.wait() => {
            tracing::debug!(task_id = job.task_id, "script exited");
            s?
        }
        _ = timeout => {
            why = Some(None);
            terminate(&mut child, pgid, *kill_grace).await?
        }
        _ = control.token.cancelled() => {
            why = Some(control.reason());
            let grace = if control.reason() == Some(StopReason::Fenced) { Duration::ZERO } else { *kill_grace };
            terminate(&mut child, pgid, grace).await?
        }
    };
    // The script is over: whatever it left running in its group goes too, so the pipes close.
    if let Some(pg) = pgid {
        let _ = killpg(pg, Signal::SIGKILL);
    }
    // The readers still take what the script wrote before it ended (as fast as the runner may
    // hold it: no timeout here, or that output would be lost while a server is slow), and stop
    // on their own when a process that left the group holds a pipe open.
    ended.cancel();
    for r in readers.into_iter().flatten() {
        let _ = r.await;
    }
    Ok(end(job, why, status))
}

/// How the script ended, as reported.
fn end(job: &Job, why: Why, status: std::process::ExitStatus) -> End {
    let code = status.code();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    tracing::debug!(task_id = job.task_id, ?code, ?signal, "script ended");
    match why {
        Some(None) => {
            (Outcome::TimedOut, code, format!("timed out after {}s; killed", job.timeout.unwrap_or_default().as_secs()))
        }
        Some(Some(StopReason::Cancelled)) => (Outcome::Cancelled, code, "cancelled; killed".into()),
        Some(Some(StopReason::Interrupted)) => {
            (Outcome::Interrupted, code, "the runner shut down before the script finished".into())
        }
        Some(Some(StopReason::Fenced)) => {
            (Outcome::Interrupted, code, "stopped: the task is no longer this runner's".into())
        }
        None => match (code, signal) {
            (Some(0), _) => (Outcome::Succeeded, Some(0), String::new()),
            (Some(c), _) => (Outcome::Failed, Some(c), String::new()),
            (None, Some(sig)) => (Outcome::Failed, None, format!("killed by signal {sig}")),
            (None, None) => (Outcome::Failed, None, "ended without an exit code".into()),
        },
    }
}

/// The shell's absolute path, found on the runner's `PATH`. An absolute program lets the standard
/// library start it with `posix_spawn`; a bare name combined with a changed environment makes it
/// fall back to `fork`, whose cost grows with the runner's memory.
fn resolve(shell: &str) -> PathBuf {
    let shell = if shell.is_empty() { "bash" } else { shell };
    if shell.contains('/') {
        return PathBuf::from(shell);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(shell))
        .find(|p| {
            std::fs::metadata(p)
                .is_ok_and(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(shell))
}

fn command(job: &Job, workdir: &Path, script: &Path) -> Command {
    let mut cmd = Command::new(resolve(&job.shell));
    cmd.arg(script)
        .current_dir(workdir)
        .env_clear()
        // The runner's own configuration (database URL, passwords) must not reach scripts.
        .envs(std::env::vars().filter(|(k, _)| !k.starts_with("BATON_")))
        .envs(&job.env)
        .envs(&job.secrets)
        .env("BATON_TASK_ID", job.task_id.to_string())
        .env("BATON_ATTEMPT", job.attempt.to_string())
        .env("BATON_PROJECT_ID", job.project_id.to_string())
        .env("BATON_TEMPLATE_ID", job.template_id.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// SIGTERM to the group, then SIGKILL after `grace` if the script is still there.
async fn terminate(
    child: &mut tokio::process::Child,
    pgid: Option<Pid>,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pg) = pgid {
        let _ = killpg(pg, if grace.is_zero() { Signal::SIGKILL } else { Signal::SIGTERM });
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(s) => s,
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGKILL);
            }
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_resolve_to_absolute_paths() {
        let bash = resolve("bash");
        assert!(bash.is_absolute(), "{bash:?}");
        assert_eq!(resolve(""), bash);
        assert_eq!(resolve("/bin/sh"), PathBuf::from("/bin/sh"));
        assert_eq!(resolve("no-such-shell-here"), PathBuf::from("no-such-shell-here"));
    }
}
