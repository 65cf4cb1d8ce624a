//! Bounded memory on runners: a log over `runner.max_log_bytes` keeps its beginning and says what
//! was dropped; and a runner whose server stops acknowledging holds no more than its bound while
//! the script blocks on its writes, then delivers everything once acknowledgements resume. The
//! server of the second test is the test itself, so it can leave chunks unacknowledged for as
//! long as it likes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::runner_server::{Runner as RunnerService, RunnerServer};
use baton_proto::v1::server_message::Msg as Out;
use baton_proto::v1::{
    Ack, Assignment, LogLine, Outcome, RegisterRequest, RegisterResponse, RunnerMessage, ServerMessage, TaskFinished,
    TaskRef, Welcome, ack,
};
use baton_runner::{HoldLimits, Runner};
use baton_testkit::TestServer;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_log_over_max_log_bytes_keeps_its_beginning_and_says_what_was_dropped() {
    let srv = TestServer::start_with(|cfg| cfg.runner.max_log_bytes = 1 << 20).await;
    let c = &srv.client;
    let pid = c.project().await;
    // 3000 lines of 1000 bytes: 1048 of them fit in 1 MiB.
    let tid = c.template(pid, json!({"script": "for i in $(seq 1 3000); do printf '%04d%0996d\\n' $i 0; done"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let lines = c.log_lines(pid, id).await;
    let mut want: Vec<String> = (1..=1048).map(|i| format!("{i:04}{:0996}", 0)).collect();
    want.push("log truncated: 1952000 bytes in 1952 lines dropped after the first 1 MiB (runner.max_log_bytes)".into());
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(texts == want, "{} lines; the last: {:?}", texts.len(), texts.last());
    assert_eq!(lines.last().unwrap()["stream"], "system");
}

/// What the hand-played dispatcher saw.
#[derive(Default)]
struct Seen {
    lines: Vec<LogLine>,
    finished: Option<TaskFinished>,
}

/// A dispatcher that assigns one task to whichever runner attaches, and acknowledges its log
/// only while `acking` is on.
struct Dispatcher {
    assignment: Assignment,
    acking: watch::Receiver<bool>,
    seen: Arc<Mutex<Seen>>,
}

#[tonic::async_trait]
impl RunnerService for Dispatcher {
    async fn register(&self, _: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("this test's runner is registered already"))
    }

    type AttachStream = ReceiverStream<Result<ServerMessage, Status>>;

    async fn attach(&self, req: Request<Streaming<RunnerMessage>>) -> Result<Response<Self::AttachStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let welcome =
            Welcome { protocol_version: baton_proto::RUNNER_PROTOCOL_VERSION, runner_id: 1, ..Welcome::default() };
        for m in [Out::Welcome(welcome), Out::Assign(self.assignment.clone())] {
            let _ = tx.send(Ok(ServerMessage { msg: Some(m) })).await;
        }
        let (mut inbound, mut acking, seen) = (req.into_inner(), self.acking.clone(), self.seen.clone());
        tokio::spawn(async move {
            let ack = |what, last_seq| Ok(ServerMessage { msg: Some(Out::Ack(Ack { what: Some(what), last_seq })) });
            let mut unacked: Option<(TaskRef, i64)> = None;
            loop {
                tokio::select! {
                    m = inbound.message() => match m.ok().flatten().and_then(|m| m.msg) {
                        Some(Msg::Started(s)) => { let _ = tx.send(ack(ack::What::Started(s.task.unwrap()), 0)).await; }
                        Some(Msg::Log(chunk)) => {
                            let last = chunk.lines.last().map_or(0, |l| l.seq);
                            seen.lock().unwrap().lines.extend(chunk.lines);
                            unacked = Some((chunk.task.unwrap(), last));
                        }
                        Some(Msg::Finished(f)) => {
                            let task = f.task.unwrap();
                            seen.lock().unwrap().finished = Some(f);
                            let _ = tx.send(ack(ack::What::Finished(task), 0)).await;
                        }
                        Some(_) => {}
                        None => return,
                    },
                    _ = acking.changed() => {}
                }
                if *acking.borrow()
                    && let Some((task, last)) = unacked.take()
                {
                    let _ = tx.send(ack(ack::What::Log(task), last)).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Serves `d` on a port of its own; returns its URL.
async fn serve(d: Dispatcher) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder().add_service(RunnerServer::new(d));
    tokio::spawn(server.serve_with_incoming(TcpListenerStream::new(listener)));
    url
}

fn counter(path: &Path) -> usize {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Polls `cond` until it holds (panics after `WAIT`), checking `invariant` at every step.
async fn until(what: &str, mut cond: impl FnMut() -> bool, invariant: impl Fn()) {
    let deadline = Instant::now() + WAIT;
    loop {
        invariant();
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_whose_server_stops_acknowledging_holds_its_bound_and_blocks_the_script() {
    const LINES: usize = 5000;
    const LINE: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let script = format!(
        "pad=$(printf '%0{}d' 0); for i in $(seq 1 {LINES}); do echo \"$pad $i\"; echo $i > \"$COUNT\"; done",
        LINE - 6
    );
    let assignment = Assignment {
        task: Some(TaskRef { task_id: 1, epoch: 1 }),
        attempt: 1,
        script,
        shell: "bash".into(),
        env: [("COUNT".to_owned(), count.display().to_string())].into(),
        first_seq: 1,
        ..Assignment::default()
    };
    let (acking, acking_rx) = watch::channel(false);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(Dispatcher { assignment, acking: acking_rx, seen: seen.clone() }).await;
    let hold = HoldLimits { per_task: 256 << 10, per_runner: 512 << 10 };
    let runner = Runner::new(baton_runner::Options {
        tls: None,
        url,
        runner_id: 1,
        secret: "runner-secret".into(),
        labels: Vec::new(),
        capacity: 1,
        work_dir: dir.path().join("work"),
        kill_grace: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
        max_log_bytes: baton_runner::DEFAULT_MAX_LOG_BYTES,
        hold,
    })
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(runner.clone().run(stop.clone()));

    // Bytes the script may have written while nothing is acknowledged: what the runner holds,
    // a read buffer and a line being cut, and a full pipe (at most 1 MiB, the Linux maximum).
    let limit = (hold.per_task as usize + (64 << 10) + (1 << 20)) / LINE;
    let bounded = || {
        let held = runner.held_bytes();
        assert!(held <= hold.per_task as usize, "the runner holds {held} bytes of one task");
        let written = counter(&count);
        assert!(written <= limit, "the script wrote {written} lines with nothing acknowledged");
    };
    let full = hold.per_task as usize - 2 * (LINE + 64);
    until("the runner to hold its bound", || runner.held_bytes() >= full, bounded).await;
    // The script stops writing: its counter holds still.
    let deadline = Instant::now() + WAIT;
    let mut last = counter(&count);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bounded();
        let now = counter(&count);
        if std::mem::replace(&mut last, now) == now {
            break;
        }
        assert!(Instant::now() < deadline, "the script never blocked");
    }
    assert!(seen.lock().unwrap().finished.is_none(), "a script that cannot write cannot end");

    acking.send(true).unwrap();
    until("the end to be reported", || seen.lock().unwrap().finished.is_some(), || {}).await;
    let Seen { lines, finished } = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(finished.unwrap().outcome, Outcome::Succeeded as i32);
    assert_eq!(counter(&count), LINES);
    let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
    assert!(seqs == (1..=LINES as i64).collect::<Vec<_>>(), "{} lines, not every one once in order", seqs.len());
    assert!(lines.iter().enumerate().all(|(i, l)| l.text.ends_with(&format!(" {}", i + 1))));
    until("the runner to let go of everything", || runner.held_bytes() == 0 && runner.running() == 0, || {}).await;
    stop.cancel();
    running.await.unwrap();
}
