//! An assignment that never reached its runner, because the stream carrying it died (with its
//! node, or on the way). The runner here is the test itself speaking the runner protocol, so it
//! can receive an assignment and act as if it never had. When the same runner process comes back
//! (`resumed`), the task goes back to the queue without using up its only attempt and then runs;
//! a fresh runner process, whose predecessor may have started it, makes it lost. And an
//! assignment another node made over a stream that had already died, after the runner's new
//! stream was set up, is found by the dispatcher holding that stream and queued again.

use std::time::Duration;

use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::server_message::Msg as In;
use baton_proto::v1::{Assignment, Outcome, TaskFinished, TaskStarted};
use baton_testkit::TestServer;
use serde_json::json;

use crate::hand_runner::HandRunner;

/// A one-attempt task assigned over a stream that then dies before the runner took it.
async fn undelivered(srv: &TestServer) -> (HandRunner, i64, i64, Assignment) {
    let c = &srv.client;
    let me = HandRunner::register(c, srv.grpc_url(), "by-hand", &["hand"]).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hi", "labels": ["hand"], "max_attempts": 1})).await;
    let mut first = me.attach(Vec::new(), false).await;
    let id = c.submit(pid, tid).await;
    let a = first.assignment().await;
    assert_eq!(a.task.as_ref().unwrap().task_id, id);
    drop(first);
    (me, pid, id, a)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_runner_gets_back_an_assignment_it_never_received() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let (me, pid, id, lost) = undelivered(&srv).await;

    let mut again = me.attach(Vec::new(), true).await;
    let a = again.assignment().await;
    let (old, new) = (lost.task.unwrap(), a.task.unwrap());
    assert_eq!(new.task_id, id);
    assert!(new.epoch > old.epoch, "the new assignment fences the one that never arrived: {old:?} → {new:?}");
    let t = c.task(pid, id).await;
    assert_eq!((t["status"].as_str(), t["attempt"].as_i64()), (Some("assigned"), Some(1)), "{t}");

    // The runner that never got the old assignment cannot report on it either.
    again.send(Msg::Started(TaskStarted { task: Some(old), time: None })).await;
    assert!(matches!(again.next().await, In::Stop(s) if s.task == Some(old)), "a stale epoch is stopped");

    again.send(Msg::Started(TaskStarted { task: Some(new), time: None })).await;
    let outcome = Outcome::Succeeded as i32;
    again
        .send(Msg::Finished(TaskFinished { task: Some(new), outcome, exit_code: Some(0), ..Default::default() }))
        .await;
    let t = c.wait_final(pid, id, Duration::from_secs(10)).await;
    assert_eq!((t["status"].as_str(), t["attempt"].as_i64()), (Some("succeeded"), Some(1)), "{t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_runner_process_makes_an_unreported_assignment_lost() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let (me, pid, id, _) = undelivered(&srv).await;

    let _again = me.attach(Vec::new(), false).await;
    let t = c.wait_final(pid, id, Duration::from_secs(10)).await;
    assert_eq!((t["status"].as_str(), t["attempt"].as_i64()), (Some("lost"), Some(1)), "{t}");
    assert_eq!(t["error"], "the runner restarted without it");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assignment_made_over_a_dead_stream_is_found_and_queued_again() {
    use sea_orm::ConnectionTrait;

    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let me = HandRunner::register(c, srv.grpc_url(), "by-hand", &["hand"]).await;
    let pid = c.project().await;
    let mine = c.template(pid, json!({"script": "echo hi", "labels": ["hand"], "max_attempts": 1})).await;
    let nobody = c.template(pid, json!({"script": "echo hi", "labels": ["elsewhere"], "max_attempts": 1})).await;
    let mut s = me.attach(Vec::new(), false).await;
    let held = c.submit(pid, mine).await;
    let got = s.assignment().await.task.unwrap();
    assert_eq!(got.task_id, held);
    let stray = c.submit(pid, nobody).await;

    // What another node does when it claims the task for this runner over its old, dead stream:
    // the claim in SQL, and no message. Both assignments are made to look old enough to judge.
    let store = srv.store().await;
    let tables = baton_store::dispatcher::Tables::new(store.clone());
    let before = tables.task(stray).await.unwrap();
    tables.claim(stray, before.epoch, me.id).await.unwrap().expect("the stray claim");
    let sql = format!("UPDATE tasks SET assigned_at = assigned_at - 60000 WHERE id IN ({held}, {stray})");
    store.conn().execute_unprepared(&sql).await.unwrap();

    let t = c.wait_status(pid, stray, &["queued"], Duration::from_secs(15)).await;
    assert_eq!(t["attempt"], 1, "{t}");
    let row = tables.task(stray).await.unwrap();
    assert_eq!((row.epoch, row.runner_id), (before.epoch + 2, None), "claimed, then fenced");
    // The task its stream holds is left alone, although it has not started either.
    let row = tables.task(held).await.unwrap();
    assert_eq!((row.status.as_str(), row.epoch, row.runner_id), ("assigned", got.epoch, Some(me.id)));
}

/// A runner process that stopped cleanly (holding nothing) leaves a mark, so the next process of
/// the same runner counts as resumed: an assignment that was on its way when the old process
/// stopped reading goes back to the queue instead of being declared lost.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_clean_runner_restart_an_undelivered_assignment_is_queued_again() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let mut runner = crate::remote_runners::RunnerProcess::start_on(c, &srv.grpc_url(), "clean", "clean").await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo ran", "labels": ["nobody-has-this"], "max_attempts": 1})).await;
    runner.stop_gracefully();
    // What a dispatcher does when it claims the task just as the runner stops reading: the claim
    // in SQL, and a message that never arrives.
    let id = c.submit(pid, tid).await;
    let tables = baton_store::dispatcher::Tables::new(srv.store().await);
    let before = tables.task(id).await.unwrap();
    tables.claim(id, before.epoch, runner.id).await.unwrap().expect("the claim");
    runner.start_again();
    let t = c.wait_status(pid, id, &["queued"], Duration::from_secs(15)).await;
    assert_eq!(t["attempt"], 1, "the attempt was not used up: {t}");
}
