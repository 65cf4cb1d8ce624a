//! Runners are outside the trust boundary. Driven by hand (the test is the runner), a runner
//! that reports on another runner's task, says a forged hello, asks for labels it was not
//! granted, lists more tasks than a stream's queue holds, or stops reading its stream, harms
//! nobody: it is answered with `Stop` or refused, changes nothing, and never stalls the node.

use std::time::{Duration, Instant};

use baton_proto::v1::runner_client::RunnerClient;
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::server_message::Msg as In;
use baton_proto::v1::{LogChunk, LogLine, Outcome, RegisterRequest, TaskFinished, TaskRef, TaskStarted};
use baton_testkit::TestServer;
use serde_json::json;
use tonic::transport::Endpoint;

use crate::hand_runner::{HandRunner, Stream};

fn finished(task: TaskRef, outcome: Outcome) -> Msg {
    Msg::Finished(TaskFinished { task: Some(task), outcome: outcome as i32, exit_code: Some(0), ..Default::default() })
}

/// The next message, which must be a `Stop` of `task`.
async fn expect_stop(s: &mut Stream, task: TaskRef) {
    match s.next_not_ack().await {
        In::Stop(stop) => assert_eq!(stop.task, Some(task)),
        other => panic!("expected Stop of {task:?}, got {other:?}"),
    }
}

/// Two runners, `owner` holding a task assigned to it over its stream `mine`, and `intruder`.
struct Scene {
    owner: HandRunner,
    intruder: HandRunner,
    mine: Stream,
    pid: i64,
    id: i64,
    task: TaskRef,
}

async fn scene(srv: &TestServer) -> Scene {
    let c = &srv.client;
    let owner = HandRunner::register(c, srv.grpc_url(), "owner", &["owner"]).await;
    let intruder = HandRunner::register(c, srv.grpc_url(), "intruder", &["intruder"]).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hi", "labels": ["owner"], "max_attempts": 2})).await;
    let mut mine = owner.attach(Vec::new(), false).await;
    let id = c.submit(pid, tid).await;
    let task = mine.assignment().await.task.unwrap();
    Scene { owner, intruder, mine, pid, id, task }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_cannot_report_on_another_runners_task() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let Scene { intruder, mine, pid, id, task, .. } = scene(&srv).await;

    // The intruder knows the task's id and epoch, and tries every report.
    let mut theirs = intruder.attach(Vec::new(), false).await;
    theirs.send(Msg::Started(TaskStarted { task: Some(task), time: None })).await;
    expect_stop(&mut theirs, task).await;
    let line = LogLine { seq: 1, text: "forged".into(), ..Default::default() };
    theirs.send(Msg::Log(LogChunk { task: Some(task), lines: vec![line] })).await;
    expect_stop(&mut theirs, task).await;
    theirs.send(finished(task, Outcome::Succeeded)).await;
    expect_stop(&mut theirs, task).await;
    theirs.send(finished(task, Outcome::Interrupted)).await;
    expect_stop(&mut theirs, task).await;
    let t = c.task(pid, id).await;
    assert_eq!(
        (t["status"].as_str(), t["epoch"].as_i64(), t["attempt"].as_i64()),
        (Some("assigned"), Some(task.epoch), Some(1)),
        "{t}"
    );
    assert!(c.log_texts(pid, id).await.is_empty(), "no forged line");

    // The owner's reports still count.
    mine.send(Msg::Started(TaskStarted { task: Some(task), time: None })).await;
    let line = LogLine { seq: 1, text: "real".into(), ..Default::default() };
    mine.send(Msg::Log(LogChunk { task: Some(task), lines: vec![line] })).await;
    mine.send(finished(task, Outcome::Succeeded)).await;
    let t = c.wait_final(pid, id, Duration::from_secs(10)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(c.log_texts(pid, id).await, ["real"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_hello_adopts_nothing_and_widens_nothing() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let Scene { owner, intruder, pid, id, task, .. } = scene(&srv).await;

    // A hello claiming the owner's task gets a Stop for it; the owner keeps it.
    let endpoint = Endpoint::from_shared(srv.grpc_url()).unwrap();
    let mut theirs = intruder.open(intruder.hello(vec![task], true), endpoint.clone()).await.unwrap();
    expect_stop(&mut theirs, task).await;
    assert!(matches!(theirs.next().await, In::Welcome(_)));
    let t = c.task(pid, id).await;
    assert_eq!((t["status"].as_str(), t["runner_id"].as_i64()), (Some("assigned"), Some(owner.id)), "{t}");

    // Labels it was not granted are refused; a capacity out of range is clamped.
    let mut wider = intruder.hello(Vec::new(), false);
    wider.labels.push("owner".into());
    let err = intruder.open(wider, endpoint.clone()).await.err().expect("a refusal");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("\"owner\""), "{}", err.message());
    let mut huge = intruder.hello(Vec::new(), false);
    huge.capacity = 1_000_000;
    let mut s = intruder.open(huge, endpoint).await.unwrap();
    assert!(matches!(s.next().await, In::Welcome(_)));
    let runners = c.get("/api/v1/runners").await.expect(200);
    let row = runners["items"].as_array().unwrap().iter().find(|r| r["id"] == intruder.id).unwrap().clone();
    assert_eq!(row["capacity"], 1024, "{row}");
    assert_eq!(row["labels"], json!(["intruder"]), "{row}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_grants_only_the_tokens_labels_and_uses() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let mint = |body: serde_json::Value| async move {
        c.post("/api/v1/runner-registration-tokens", body).await.expect(201)["token"].as_str().unwrap().to_owned()
    };
    let grpc = RunnerClient::connect(srv.grpc_url()).await.unwrap();
    let mut n = 0;
    let mut register = |token: String, labels: &[&str]| {
        n += 1;
        let req = RegisterRequest {
            token,
            name: format!("r{n}"),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            capacity: 1,
            version: "1".into(),
        };
        let mut grpc = grpc.clone();
        async move { grpc.register(req).await.map(|r| r.into_inner()) }
    };

    // Single use by default.
    let once = mint(json!({})).await;
    register(once.clone(), &[]).await.unwrap();
    let err = register(once, &[]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(err.message().contains("used-up"), "{}", err.message());
    // max_uses, and 0 for any number.
    let three = mint(json!({"max_uses": 3})).await;
    for _ in 0..3 {
        register(three.clone(), &[]).await.unwrap();
    }
    assert!(register(three, &[]).await.is_err());
    let any = mint(json!({"max_uses": 0, "expires_in_seconds": 60})).await;
    for _ in 0..5 {
        register(any.clone(), &[]).await.unwrap();
    }
    // A token's labels are all a runner may have.
    let linux = mint(json!({"labels": ["linux", "docker"], "max_uses": 0})).await;
    assert_eq!(register(linux.clone(), &["docker"]).await.unwrap().labels, ["docker"]);
    assert_eq!(register(linux.clone(), &[]).await.unwrap().labels, ["linux", "docker"]);
    let err = register(linux, &["docker", "gpu"]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("\"gpu\""), "{}", err.message());
    let bad = c.post("/api/v1/runner-registration-tokens", json!({"max_uses": -1})).await;
    assert_eq!(bad.status.as_u16(), 400);
}

/// A hello listing more tasks than a stream's queue holds used to block the stream's opening
/// forever: the answers (a `Stop` for each) filled a queue nobody drained yet.
#[tokio::test(flavor = "multi_thread")]
async fn a_hello_listing_many_tasks_is_answered_in_full() {
    let srv = TestServer::start_without_runner().await;
    let me = HandRunner::register(&srv.client, srv.grpc_url(), "many", &[]).await;
    let running: Vec<TaskRef> = (1..=600).map(|i| TaskRef { task_id: 1_000_000 + i, epoch: 1 }).collect();
    let endpoint = Endpoint::from_shared(srv.grpc_url()).unwrap();
    let open = me.open(me.hello(running.clone(), true), endpoint);
    let mut s = tokio::time::timeout(Duration::from_secs(20), open).await.expect("the stream opens").unwrap();
    for task in running {
        expect_stop(&mut s, task).await;
    }
    assert!(matches!(s.next().await, In::Welcome(_)));
}

/// A runner that stops reading its stream while tasks keep being assigned to it: placement
/// never waits for it, so another runner keeps receiving work at once, and the stuck runner is
/// cut off.
#[tokio::test(flavor = "multi_thread")]
async fn a_runner_that_stops_reading_stalls_nobody() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let stuck = HandRunner::register(c, srv.grpc_url(), "stuck", &["stuck"]).await;
    let healthy = HandRunner::register(c, srv.grpc_url(), "healthy", &["healthy"]).await;
    let pid = c.project().await;
    // Assignments of 32 KiB fill the small HTTP/2 windows of the stuck runner's connection after
    // a few of them; the rest pile up in its queue on the server.
    let big = format!("true\n# {}", "x".repeat(32 * 1024));
    let heavy = c.template(pid, json!({"script": big, "labels": ["stuck"]})).await;
    let light = c.template(pid, json!({"script": "true", "labels": ["healthy"]})).await;
    let mut hello = stuck.hello(Vec::new(), false);
    hello.capacity = 1024;
    let small = Endpoint::from_shared(srv.grpc_url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut never_read = stuck.open(hello, small).await.unwrap();
    for _ in 0..400 {
        c.submit(pid, heavy).await;
    }
    let mut ok = healthy.attach(Vec::new(), false).await;
    let queued_at = Instant::now();
    let id = c.submit(pid, light).await;
    let a = tokio::time::timeout(Duration::from_secs(5), ok.assignment()).await.expect("the healthy runner got work");
    let waited = queued_at.elapsed();
    assert_eq!(a.task.unwrap().task_id, id);
    eprintln!("the healthy runner's task was assigned {waited:?} after it was queued");

    // The stuck runner is cut off: its stream ends (it shows offline once its lease runs out,
    // as nothing it sends is read any more), and once it reads again it finds the reason.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runners = c.get("/api/v1/runners").await.expect(200);
        let row = runners["items"].as_array().unwrap().iter().find(|r| r["id"] == stuck.id).unwrap().clone();
        if row["online"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the stuck runner was never cut off: {row}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match never_read.inbound.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stuck runner's stream ends");
    let status = end.expect("an error status");
    assert!(status.message().contains("stopped reading"), "{status:?}");
}
