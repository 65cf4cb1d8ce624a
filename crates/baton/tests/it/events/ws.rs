//! The WebSocket: logs exactly once and in order (live, from a resume point, across a
//! reconnect), task changes with growing versions and resume by time, a slow client resynced, a
//! client catching up waited for, silent clients and clients that take nothing closed, origins
//! and credentials checked, subscriptions ended with a role.

use baton_testkit::TestServer;
use baton_testkit::events::{Connect, Ws, stored, token};
use serde_json::{Value, json};

/// A script printing `n` numbered lines, a few at a time, so a subscriber follows it live.
fn counting(n: u32) -> Value {
    json!({"script": format!("for i in $(seq 1 {n}); do echo line-$i; if [ $((i % 50)) = 0 ]; then sleep 0.05; fi; done")})
}

/// Reads `task.log` events of `topic` until `task.log.end`; returns (seq, text) of every line,
/// and whether a resync came (then it stops there).
async fn read_log(ws: &mut Ws, topic: &str) -> (Vec<(i64, String)>, bool) {
    let mut got = Vec::new();
    loop {
        let v = ws.next_event().await;
        if v["op"] == "resync" {
            assert_eq!(v["topics"], json!([topic]), "{v}");
            return (got, true);
        }
        assert_eq!(v["topic"], topic, "{v}");
        match v["type"].as_str() {
            Some("task.log") => {
                let lines = v["data"]["lines"].as_array().unwrap();
                for l in lines {
                    got.push((l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()));
                }
                assert_eq!(v["seq"], lines.last().unwrap()["seq"], "seq is the last line's: {v}");
            }
            Some("task.log.end") => return (got, false),
            _ => panic!("unexpected message {v}"),
        }
    }
}

async fn connect(srv: &TestServer, token: &str) -> Ws {
    Ws::connect(Connect { base: &srv.url, token: Some(token), origin: None }).await.expect("connected")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_arrives_live_once_and_in_order_and_from_a_resume_point() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    let tid = c.template(pid, counting(2000)).await;
    let id = c.submit(pid, tid).await;
    let topic = format!("task:{id}:log");
    let mut ws = connect(&srv, &t).await;
    ws.subscribe(&[&topic], json!({})).await;
    assert_eq!(ws.next().await, json!({"op": "subscribed", "topics": [topic]}));
    let (got, resynced) = read_log(&mut ws, &topic).await;
    assert!(!resynced);
    assert_eq!(got, stored(c, pid, id).await, "every stored line once, in order");
    assert_eq!(got.len(), 2000);

    // From a resume point: only what follows it.
    let mut again = connect(&srv, &t).await;
    again.subscribe(&[&topic], json!({ topic.clone(): 1500 })).await;
    let (rest, _) = read_log(&mut again, &topic).await;
    assert_eq!(rest, got[1500..], "exactly the lines after the resume point");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reconnects_misses_and_repeats_nothing() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    let tid = c.template(pid, counting(3000)).await;
    let id = c.submit(pid, tid).await;
    let topic = format!("task:{id}:log");
    let mut got: Vec<(i64, String)> = Vec::new();
    // Drop the connection three times while the task prints, resuming from the last line seen.
    for _ in 0..3 {
        let mut ws = connect(&srv, &t).await;
        let resume = got.last().map_or(json!({}), |l| json!({ topic.clone(): l.0 }));
        ws.subscribe(&[&topic], resume).await;
        let until = got.len() + 400;
        while got.len() < until {
            let v = ws.next_event().await;
            if v["type"] == "task.log.end" {
                break;
            }
            for l in v["data"]["lines"].as_array().unwrap() {
                got.push((l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()));
            }
        }
    }
    let mut ws = connect(&srv, &t).await;
    ws.subscribe(&[&topic], json!({ topic.clone(): got.last().unwrap().0 })).await;
    got.extend(read_log(&mut ws, &topic).await.0);
    assert_eq!(got, stored(c, pid, id).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn task_changes_arrive_with_growing_versions_and_resume_from_a_time() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hi"})).await;
    let topic = format!("project:{pid}");
    let mut ws = connect(&srv, &t).await;
    ws.subscribe(&[&topic], json!({})).await;
    ws.next().await;
    let id = c.submit(pid, tid).await;
    let mut versions = Vec::new();
    loop {
        let v = ws.next_event().await;
        assert_eq!((v["topic"].as_str(), v["data"]["id"].as_i64()), (Some(topic.as_str()), Some(id)), "{v}");
        let version = v["seq"].as_i64().unwrap();
        assert_eq!(v["data"]["version"], version, "seq is the task's version");
        assert_eq!(v["type"], if version == 1 { "task.created" } else { "task.updated" });
        assert!(versions.last().is_none_or(|last| version > *last), "versions grow: {versions:?} then {version}");
        versions.push(version);
        if v["data"]["status"] == "succeeded" {
            assert_eq!(v["data"], c.task(pid, id).await, "the whole task, as GET shows it");
            break;
        }
    }
    // A subscriber coming back gets every task changed since it left, at its latest version.
    let mut back = connect(&srv, &t).await;
    back.subscribe(&[&topic], json!({ topic.clone(): chrono::Utc::now().timestamp_millis() - 60_000 })).await;
    let v = back.next_event().await;
    assert_eq!((v["data"]["id"].as_i64(), v["data"]["status"].as_str()), (Some(id), Some("succeeded")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_is_told_to_resync_and_others_are_not_slowed() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    // Short lines: each chunk of a thousand lines is small enough to come with its notice, so
    // they arrive live (lines read from SQL would wait for the client instead), and as events they
    // make about 27 MB, far more than a client's queue and the socket buffers hold. A pause after
    // each thousand keeps them within what a client that reads at once can take.
    let script = "for i in $(seq 1 300000); do echo line-$i; if [ $((i % 1000)) = 0 ]; then sleep 0.01; fi; done";
    let tid = c.template(pid, json!({ "script": script })).await;
    let id = c.submit(pid, tid).await;
    let topic = format!("task:{id}:log");
    let mut slow = connect(&srv, &t).await;
    slow.subscribe(&[&topic], json!({})).await;
    let mut quick = connect(&srv, &t).await;
    quick.subscribe(&[&topic], json!({})).await;
    let (all, resynced) = read_log(&mut quick, &topic).await;
    assert!(!resynced, "a client that keeps up is never resynced");
    assert_eq!(all.len(), 300_000);
    // The slow one reads only now: what it got is a gapless prefix, then the resync; resuming
    // from its last line gives it the rest.
    let (mut got, resynced) = read_log(&mut slow, &topic).await;
    assert!(resynced, "the slow client was told to resync");
    assert_eq!(got, all[..got.len()], "no gap before the resync");
    slow.subscribe(&[&topic], json!({ topic.clone(): got.last().map_or(0, |l| l.0) })).await;
    let (rest, resynced) = read_log(&mut slow, &topic).await;
    assert!(!resynced, "resuming from a resync reads the log from SQL, which waits for the client");
    got.extend(rest);
    assert_eq!(got, all, "and nothing lost after it");
}

/// A finished task with 30 MB of stored lines, far more than a client's queue and the socket
/// buffers hold; its project and id.
async fn long_finished_log(srv: &TestServer) -> (i64, i64) {
    let c = &srv.client;
    let pid = c.project().await;
    let tid =
        c.template(pid, json!({"script": "for i in $(seq 1 150000); do printf 'line-%s %0190d\\n' $i 0; done"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, std::time::Duration::from_secs(120)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    (pid, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_catching_up_on_a_long_log_is_waited_for_not_resynced() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let (pid, id) = long_finished_log(&srv).await;
    let topic = format!("task:{id}:log");
    let mut ws = connect(&srv, &t).await;
    ws.subscribe(&[&topic], json!({})).await;
    // The client reads nothing for a while; the node reads SQL far faster. Lines read from SQL
    // wait for room in the client's queue: only live events, which cannot wait, overflow it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (got, resynced) = read_log(&mut ws, &topic).await;
    assert!(!resynced, "a client catching up was told to resync after {} lines", got.len());
    assert!(got == stored(c, pid, id).await, "every line once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn origins_and_credentials_are_checked_before_the_upgrade() {
    let srv = TestServer::start_with(|cfg| cfg.http.allowed_origins = vec!["https://console.example.com".into()]).await;
    let t = token(&srv.client).await;
    let base = &srv.url;
    let refused = Ws::connect(Connect { base, token: Some(&t), origin: Some("https://evil.example.com") }).await;
    assert_eq!(refused.err(), Some(403));
    assert_eq!(Ws::connect(Connect { base, token: None, origin: None }).await.err(), Some(401));
    assert_eq!(Ws::connect(Connect { base, token: Some("bt_not-a-token"), origin: None }).await.err(), Some(401));
    // The server's own origin: what a page it served sends.
    assert!(Ws::connect(Connect { base, token: Some(&t), origin: Some(base) }).await.is_ok(), "its own origin");
    let allowed = Some("https://console.example.com");
    assert!(Ws::connect(Connect { base, token: Some(&t), origin: allowed }).await.is_ok());
    // ?token= for clients that cannot set headers.
    let url = format!("{}/api/v1/ws?token={t}", base.replacen("http", "ws", 1));
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_the_caller_may_not_read_is_refused_and_losing_a_role_ends_it() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let other = c.project().await;
    let user =
        c.post("/api/v1/users", json!({"username": "watcher", "password": "watcher-password"})).await.expect(201);
    let uid = user["id"].as_i64().unwrap();
    c.send(reqwest::Method::PUT, &format!("/api/v1/projects/{pid}/members/{uid}"), Some(json!({"role": "viewer"})))
        .await
        .expect(200);
    let watcher = baton_testkit::Client::new(&srv.url);
    watcher.login("watcher", "watcher-password").await;
    let t = token(&watcher).await;
    let mut ws = connect(&srv, &t).await;
    let (mine, theirs) = (format!("project:{pid}"), format!("project:{other}"));
    ws.subscribe(&[&mine, &theirs, "runners", "nonsense"], json!({})).await;
    let mut errors = Vec::new();
    loop {
        let v = ws.next().await;
        if v["op"] == "subscribed" {
            assert_eq!(v["topics"], json!([mine]));
            break;
        }
        assert_eq!(v["op"], "error", "{v}");
        errors.push((v["topic"].as_str().unwrap().to_owned(), v["error"]["code"].as_str().unwrap().to_owned()));
    }
    let want: Vec<(String, String)> =
        [(theirs.as_str(), "not_found"), ("runners", "forbidden"), ("nonsense", "invalid_input")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(errors, want);
    c.delete(&format!("/api/v1/projects/{pid}/members/{uid}")).await.expect(204);
    let v = ws.next().await;
    assert_eq!((v["op"].as_str(), v["topic"].as_str()), (Some("error"), Some(mine.as_str())), "{v}");
    assert_eq!(v["error"]["code"], "not_found");
}

/// The server pings; a client that answers stays, one silent for three pings is closed.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_is_closed_and_one_that_answers_pings_stays() {
    let srv = TestServer::start_with(|cfg| cfg.http.ws_ping_seconds = 1).await;
    let t = token(&srv.client).await;
    let mut silent = connect(&srv, &t).await;
    let mut answering = connect(&srv, &t).await;
    // Reading answers pings; this one reads for five seconds and hears nothing but them.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        match answering.read(std::time::Duration::from_millis(500)).await {
            baton_testkit::events::Read::Quiet => {}
            other => panic!("a client that answers pings must stay: {other:?}"),
        }
    }
    // Closed (with a close frame saying why, or already gone when it tries to answer).
    match silent.read(std::time::Duration::from_secs(2)).await {
        baton_testkit::events::Read::Closed(_) => {}
        other => panic!("a silent client is closed, got {other:?}"),
    }
}

/// A client that stops reading while it is sent more than the socket holds: the server's write
/// waits, and so would the pings that find it silent; it is closed after three pings all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_takes_nothing_is_closed_though_its_writes_wait() {
    let srv = TestServer::start_with(|cfg| cfg.http.ws_ping_seconds = 1).await;
    let t = token(&srv.client).await;
    let (_, id) = long_finished_log(&srv).await;
    let mut stalled = connect(&srv, &t).await;
    stalled.subscribe(&[&format!("task:{id}:log")], json!({})).await;
    let connections = |s: &baton_testkit::Scrape| s.value("baton_ws_connections", &[]);
    baton_testkit::Scrape::until(&srv.url, std::time::Duration::from_secs(10), |s| connections(s) == 1.0).await;
    // Three pings of a second, and a little more for the write under way.
    let closed = std::time::Instant::now();
    baton_testkit::Scrape::until(&srv.url, std::time::Duration::from_secs(15), |s| connections(s) == 0.0).await;
    eprintln!("closed after {:?}", closed.elapsed());
    drop(stalled);
}
