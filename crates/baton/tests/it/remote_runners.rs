//! Remote runners as real processes: registered with a token through `baton runner register`,
//! started with `baton runner run`, routed by labels, paused and revoked through the API, and a
//! runner SIGKILLed in the middle of a task (the task is lost, retried on another runner, and
//! succeeds once).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

/// A `baton runner run` child process; killed on drop.
pub struct RunnerProcess {
    child: Child,
    dir: tempfile::TempDir,
    pub id: i64,
}

impl RunnerProcess {
    /// Registers a runner named `name` with `labels` and starts it.
    async fn start(srv: &TestServer, name: &str, labels: &str) -> RunnerProcess {
        RunnerProcess::start_on(&srv.client, &srv.grpc_url(), name, labels).await
    }

    /// Registers a runner through the API at `c` and starts it dialling `grpc_url`.
    pub async fn start_on(c: &Client, grpc_url: &str, name: &str, labels: &str) -> RunnerProcess {
        RunnerProcess::start_with(c, grpc_url, name, labels, &[]).await
    }

    /// Like [`RunnerProcess::start_on`], with more arguments for `baton runner register`.
    pub async fn start_with(c: &Client, grpc_url: &str, name: &str, labels: &str, more: &[&str]) -> RunnerProcess {
        let token = c.registration_token().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runner.toml");
        let mut args =
            vec!["runner", "register", "--url", grpc_url, "--token", &token, "--name", name, "--capacity", "1"];
        args.extend(["--labels", labels]);
        args.extend(more);
        args.push("--config");
        let out = baton(&args, &file);
        assert!(out.status.success(), "register failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&file).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "the runner's secret must be readable by its owner only");
        let id = text.lines().find_map(|l| l.strip_prefix("runner_id = ")).unwrap().parse().unwrap();
        let child = run(dir.path());
        let r = RunnerProcess { child, dir, id };
        r.wait_online(c).await;
        r
    }

    /// SIGTERM, and waits until the process has drained and exited.
    pub fn stop_gracefully(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }

    /// Starts `baton runner run` again on the same config and work directory.
    pub fn start_again(&mut self) {
        self.child = run(self.dir.path());
    }

    pub async fn wait_online(&self, c: &Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = c.get(&format!("/api/v1/runners/{}", self.id)).await.expect(200);
            if r["online"] == true && r["version"] != "" {
                return;
            }
            assert!(Instant::now() < deadline, "runner {} never came online: {r}\n{}", self.id, self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("runner.log")).unwrap_or_default()
    }

    pub fn sigkill(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// `baton runner run` on the config in `dir`, logging to `dir/runner.log`.
fn run(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("runner.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["runner", "run", "--config"])
        .arg(dir.join("runner.toml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn baton(args: &[&str], last: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .arg(last)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

/// Kills the process groups whose ids scripts wrote into `dir` (scripts a SIGKILLed runner left).
pub fn kill_scripts(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Some(pg) = std::fs::read_to_string(e.path()).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::killpg(Pid::from_raw(pg), Signal::SIGKILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_route_tasks_and_a_bad_token_is_refused() {
    let srv = TestServer::start_without_runner().await;
    let plain = RunnerProcess::start(&srv, "plain", "linux").await;
    let gpu = RunnerProcess::start(&srv, "gpu", "linux,gpu").await;
    let c = &srv.client;
    let pid = c.project().await;
    let on_gpu = c.template(pid, json!({"script": "echo on gpu", "labels": ["gpu"]})).await;
    for _ in 0..3 {
        let id = c.submit(pid, on_gpu).await;
        let t = c.wait_final(pid, id, Duration::from_secs(30)).await;
        assert_eq!((t["status"].as_str(), t["runner_id"].as_i64()), (Some("succeeded"), Some(gpu.id)), "{t}");
    }
    let runners = c.get("/api/v1/runners").await.expect(200);
    let names: Vec<_> =
        runners["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, vec!["gpu", "plain"], "newest first");
    assert_eq!(runners["items"][0]["labels"], json!(["linux", "gpu"]));
    drop(plain);

    let dir = tempfile::tempdir().unwrap();
    let out = baton(
        &["runner", "register", "--url", &srv.grpc_url(), "--token", "brt_not-a-token", "--name", "x", "--config"],
        &dir.path().join("r.toml"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("registration token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("r.toml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_runner_loses_its_task_which_succeeds_once_on_another() {
    let srv = TestServer::start_without_runner().await;
    let mut first = RunnerProcess::start(&srv, "first", "linux").await;
    let c = &srv.client;
    let pid = c.project().await;
    let marks = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    // Attempt 1 hangs; attempt 2 succeeds. Every attempt leaves a mark.
    let script = format!(
        "echo $$ > {pids}/$BATON_ATTEMPT; echo attempt >> {marks}/attempt-$BATON_ATTEMPT; \
         if [ \"$BATON_ATTEMPT\" = 1 ]; then sleep 60; fi; echo done",
        pids = pids.path().display(),
        marks = marks.path().display()
    );
    let tid = c.template(pid, json!({"script": script, "max_attempts": 2})).await;
    let id = c.submit(pid, tid).await;
    let running = c.wait_status(pid, id, &["running"], Duration::from_secs(30)).await;
    assert_eq!(running["runner_id"].as_i64(), Some(first.id));
    let second = RunnerProcess::start(&srv, "second", "linux").await;
    first.sigkill();

    // The lease (4 s in tests) expires, the task is queued again and the other runner takes it.
    let t = c.wait_final(pid, id, Duration::from_secs(40)).await;
    kill_scripts(pids.path());
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!((t["attempt"].as_i64(), t["runner_id"].as_i64()), (Some(2), Some(second.id)), "{t}");
    assert!(t["epoch"].as_i64().unwrap() >= 3, "claim, loss and re-claim each bump the epoch: {t}");
    let count =
        |n: u32| std::fs::read_to_string(marks.path().join(format!("attempt-{n}"))).map_or(0, |s| s.lines().count());
    assert_eq!((count(1), count(2)), (1, 1), "each attempt ran exactly once");
    let texts = c.log_texts(pid, id).await;
    assert_eq!(texts.last().map(String::as_str), Some("done"), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_runners_get_no_work_and_revoked_ones_are_cut_off_for_good() {
    let srv = TestServer::start_without_runner().await;
    let r = RunnerProcess::start(&srv, "only", "linux").await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hi"})).await;

    let paused = c.patch(&format!("/api/v1/runners/{}", r.id), json!({"paused": true})).await.expect(200);
    assert_eq!(paused["paused"], true);
    let id = c.submit(pid, tid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.task(pid, id).await["status"], "queued", "a paused runner took work");
    c.patch(&format!("/api/v1/runners/{}", r.id), json!({"paused": false})).await.expect(200);
    assert_eq!(c.wait_final(pid, id, Duration::from_secs(20)).await["status"], "succeeded");

    c.delete(&format!("/api/v1/runners/{}", r.id)).await.expect(204);
    c.get(&format!("/api/v1/runners/{}", r.id)).await.expect(404);
    let id = c.submit(pid, tid).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.task(pid, id).await["status"], "queued", "a revoked runner took work");
    let log = r.log();
    assert!(log.contains("revoked") || log.contains("wrong secret"), "the runner was not told: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_no_runner_can_take_says_why_it_waits() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true", "labels": ["arm64"]})).await;
    let id = c.submit(pid, tid).await;
    let t = c.task(pid, id).await;
    assert_eq!(t["status"], "queued");
    let reason = t["queue_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("no registered runner") && reason.contains("arm64"), "{t}");
    let list = c.get(&format!("/api/v1/projects/{pid}/tasks")).await.expect(200);
    assert_eq!(list["items"][0]["queue_reason"], t["queue_reason"]);

    // A runner with the label arrives: the task runs, and a finished task has no reason.
    let _arm = RunnerProcess::start(&srv, "arm", "arm64").await;
    let t = c.wait_final(pid, id, Duration::from_secs(30)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(t["queue_reason"].is_null(), "{t}");
}
