//! A per-second schedule on the cluster while one node is SIGKILLed and started again three
//! seconds later. Every node fires schedules, so each due time is raced for by three nodes (two
//! for a while): it must still fire exactly once — no gap while the node is dead, no duplicate
//! when it comes back — with a task of its own that succeeds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// How long the schedule stays enabled, and when in that time the node is killed.
const ENABLED: Duration = Duration::from_secs(20);
const KILL_AFTER: Duration = Duration::from_secs(7);
const DEAD_FOR: Duration = Duration::from_secs(3);

fn time_of(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

/// The fires of schedule `sid`, oldest first, as `(due_at, status, task_id)`.
async fn fires(c: &Cluster, pid: i64, sid: i64) -> Vec<(DateTime<Utc>, String, Option<i64>)> {
    let path = format!("/api/v1/projects/{pid}/schedules/{sid}/fires?limit=500");
    let page = c.api.get(&c.http(), &path, 200).await.body;
    let mut out: Vec<_> = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {page}"))
        .iter()
        .map(|f| (time_of(&f["due_at"]), f["status"].as_str().unwrap_or_default().to_owned(), f["task_id"].as_i64()))
        .collect();
    out.reverse();
    out
}

fn dues(fires: &[(DateTime<Utc>, String, Option<i64>)]) -> String {
    let all: Vec<String> = fires.iter().map(|(d, s, t)| format!("{}={s}/{t:?}", d.format("%H:%M:%S%.3f"))).collect();
    all.join(" ")
}

/// Disables the schedule through HAProxy, retrying while no node answers (the PATCH is
/// idempotent).
async fn disable(c: &Cluster, pid: i64, sid: i64) {
    let path = format!("/api/v1/projects/{pid}/schedules/{sid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.api.try_send(reqwest::Method::PATCH, &c.http(), &path, Some(&json!({"enabled": false}))).await;
        match r {
            Ok(r) if r.status == 200 => return assert_eq!(r.body["enabled"], false, "{:?}", r.body),
            Ok(r) if ![502, 503, 504].contains(&r.status) => panic!("disabling answered {}: {:?}", r.status, r.body),
            other => assert!(Instant::now() < deadline, "the schedule could not be disabled: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the project's tasks until every one has ended (panics after `timeout`).
async fn all_ended(c: &Cluster, pid: i64, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let tasks = c.api.all_tasks(&c.http(), pid).await;
        let open: Vec<&Value> = tasks
            .iter()
            .filter(|t| ["queued", "assigned", "running"].contains(&t["status"].as_str().unwrap_or("")))
            .collect();
        if open.is_empty() {
            return tasks;
        }
        assert!(Instant::now() < deadline, "tasks still unfinished after {timeout:?}: {open:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_per_second_schedule_fires_once_per_second_through_a_node_kill(dialect: Dialect) {
    let mut c = Cluster::start(dialect).await;
    let pid = c.admin.project().await;
    let tid = c.admin.template(pid, json!({"script": r#"echo "$BATON_TASK_ID""#})).await;
    let body = json!({"template_id": tid, "cron": "* * * * * *"});
    let r = c.admin.post(&format!("/api/v1/projects/{pid}/schedules"), body).await;
    let victim = r.headers.get("x-baton-node").and_then(|v| v.to_str().ok()).unwrap_or("node-2").to_owned();
    let s = r.expect(201);
    let (sid, created, enabled_at) = (s["id"].as_i64().unwrap(), time_of(&s["created_at"]), Instant::now());

    tokio::time::sleep(KILL_AFTER).await;
    c.node_mut(&victim).sigkill();
    eprintln!("SIGKILLed {victim}, which created schedule {sid}, {:?} after its creation", enabled_at.elapsed());
    tokio::time::sleep(DEAD_FOR).await;
    c.node_mut(&victim).restart().await;
    c.node(&victim).wait_ready_status(200, Duration::from_secs(30)).await;
    eprintln!("{victim} is ready again {:?} after the schedule's creation", enabled_at.elapsed());
    tokio::time::sleep(ENABLED.saturating_sub(enabled_at.elapsed())).await;
    let disabling = Utc::now();
    disable(&c, pid, sid).await;
    let disabled = Utc::now();
    // A change takes effect within a second; after that, nothing more may fire.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = fires(&c, pid, sid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fires(&c, pid, sid).await, all, "fires appeared after the schedule was disabled");
    eprintln!("created {created}, disabled {disabling}..{disabled}; fires: {}", dues(&all));

    let gaps: Vec<_> = all.windows(2).filter(|w| w[1].0 - w[0].0 != TimeDelta::seconds(1)).collect();
    assert!(gaps.is_empty(), "due times not one second apart (gap or duplicate) at {gaps:?}; all: {}", dues(&all));
    assert!(all.len() >= 15, "only {} fires in {ENABLED:?}: {}", all.len(), dues(&all));
    let (first, last) = (all[0].0, all[all.len() - 1].0);
    assert!(first > created && first <= created + TimeDelta::seconds(3), "first due {first}, created {created}");
    assert!(last >= disabling - TimeDelta::seconds(2), "it stopped firing at {last}, disabled at {disabling}");
    assert!(last <= disabled + TimeDelta::seconds(1), "it fired at {last}, after the disable at {disabled}");
    assert!(all.iter().all(|(_, status, task)| status == "fired" && task.is_some()), "{}", dues(&all));
    let fired: BTreeSet<i64> = all.iter().filter_map(|f| f.2).collect();
    assert_eq!(fired.len(), all.len(), "fires share a task: {}", dues(&all));

    let tasks = all_ended(&c, pid, Duration::from_secs(60)).await;
    let ids: BTreeSet<i64> = tasks.iter().filter_map(|t| t["id"].as_i64()).collect();
    assert_eq!(tasks.len(), all.len(), "tasks of the schedule vs fires");
    assert_eq!(ids, fired, "the project's tasks are not those of the fires");
    for (due, _, id) in &all {
        let t = tasks.iter().find(|t| t["id"].as_i64() == *id).unwrap();
        assert_eq!((&t["status"], &t["schedule_id"]), (&json!("succeeded"), &json!(sid)), "{t}");
        assert!(time_of(&t["created_at"]) >= *due, "task created before its due time {due}: {t}");
        let log = c.api.get(&c.http(), &format!("/api/v1/projects/{pid}/tasks/{}/log", id.unwrap()), 200).await.body;
        let texts: Vec<&str> = log["items"].as_array().unwrap().iter().filter_map(|l| l["text"].as_str()).collect();
        assert_eq!(texts, [id.unwrap().to_string()], "task {id:?} ran some other script");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_second_schedule_fires_once_per_second_through_a_node_kill_on_postgres() {
    a_per_second_schedule_fires_once_per_second_through_a_node_kill(Dialect::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_second_schedule_fires_once_per_second_through_a_node_kill_on_mariadb() {
    a_per_second_schedule_fires_once_per_second_through_a_node_kill(Dialect::Mysql).await;
}
