//! Schedules on one node, which is the whole cluster: bad input and unknown schedules, the preview
//! of due times in a time zone, and firing — every due time once, one-shots, the overlap rule and
//! catch-up after an outage — judged by the fires list and by the tasks the fires created.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_testkit::{Client, Resp, TestServer};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// One row of a schedule's fires list.
#[derive(Debug, Clone, PartialEq)]
struct Fire {
    due: DateTime<Utc>,
    status: String,
    task: Option<i64>,
    reason: Option<String>,
}

pub fn time_of(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id: {v}"))
}

fn base(pid: i64) -> String {
    format!("/api/v1/projects/{pid}/schedules")
}

async fn create(c: &Client, pid: i64, body: Value) -> Value {
    c.post(&base(pid), body).await.expect(201)
}

/// Disables a schedule; returns when the PATCH had been answered.
async fn disable(c: &Client, pid: i64, sid: i64) -> DateTime<Utc> {
    let s = c.patch(&format!("{}/{sid}", base(pid)), json!({"enabled": false})).await.expect(200);
    assert_eq!(s["enabled"], false, "{s}");
    Utc::now()
}

/// A schedule's fires, oldest first (the API lists them newest first, as a single page).
async fn fires(c: &Client, pid: i64, sid: i64) -> Vec<Fire> {
    let page = c.get(&format!("{}/{sid}/fires?limit=500", base(pid))).await.expect(200);
    assert_eq!(page["next"], Value::Null, "{page}");
    let mut out: Vec<Fire> = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {page}"))
        .iter()
        .map(|f| Fire {
            due: time_of(&f["due_at"]),
            status: f["status"].as_str().unwrap_or_default().to_owned(),
            task: f["task_id"].as_i64(),
            reason: f["reason"].as_str().map(str::to_owned),
        })
        .collect();
    assert!(out.windows(2).all(|w| w[0].due > w[1].due), "fires not newest first: {}", dues(&out));
    out.reverse();
    out
}

/// Polls the fires list until `pred` holds (panics after `timeout`).
async fn wait_fires(c: &Client, pid: i64, sid: i64, timeout: Duration, pred: impl Fn(&[Fire]) -> bool) -> Vec<Fire> {
    let deadline = Instant::now() + timeout;
    loop {
        let f = fires(c, pid, sid).await;
        if pred(&f) {
            return f;
        }
        assert!(Instant::now() < deadline, "the fires never got there within {timeout:?}: {f:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn dues(fires: &[Fire]) -> String {
    let all: Vec<String> = fires.iter().map(|f| format!("{}={}", f.due.format("%H:%M:%S%.3f"), f.status)).collect();
    all.join(" ")
}

/// Due times one second apart, oldest first: no gap, no duplicate.
fn assert_every_second(fires: &[Fire]) {
    let bad = fires.windows(2).any(|w| w[1].due - w[0].due != TimeDelta::seconds(1));
    assert!(!bad, "due times are not one second apart: {}", dues(fires));
}

/// The start of the whole second `t` falls in.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

/// Every fired fire has its own task, which succeeded, belongs to schedule `sid`, was created at
/// its due time or after, and ran the script as itself; the project (used by `sid` alone) has no
/// other task. Returns the tasks, in the order of the fires.
async fn assert_tasks_of_fires(c: &Client, pid: i64, sid: i64, fires: &[Fire]) -> Vec<Value> {
    let fired: Vec<&Fire> = fires.iter().filter(|f| f.status == "fired").collect();
    let ids: Vec<i64> =
        fired.iter().map(|f| f.task.unwrap_or_else(|| panic!("a fired fire without a task: {f:?}"))).collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "fires share a task: {fires:?}");
    let mut tasks = Vec::new();
    for (f, id) in fired.iter().zip(&ids) {
        let t = c.wait_final(pid, *id, WAIT).await;
        assert_eq!(t["status"], "succeeded", "{t}");
        assert_eq!(t["schedule_id"], sid, "{t}");
        assert!(time_of(&t["created_at"]) >= f.due, "task created before its due time {}: {t}", f.due);
        assert_eq!(c.log_texts(pid, *id).await, [format!("task {id}")], "task {id} ran some other script");
        tasks.push(t);
    }
    let list = c.get(&format!("/api/v1/projects/{pid}/tasks?limit=500")).await.expect(200);
    let listed: BTreeSet<i64> = list["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(listed, distinct, "the project's tasks are not those of the fires");
    tasks
}

/// Whether `text` names `id` as a whole number.
fn mentions_id(text: &str, id: i64) -> bool {
    text.split(|ch: char| !ch.is_ascii_digit()).any(|w| w == id.to_string())
}

/// Whether an error message starts with `field` (bare or in backticks), as API.md asks.
fn starts_with_field(msg: &str, field: &str) -> bool {
    msg.starts_with(&format!("{field}:")) || msg.starts_with(&format!("`{field}`:"))
}

/// A 400 `invalid_input` whose message starts with `field`.
pub fn assert_field(r: &Resp, field: &str) {
    assert_eq!(r.status.as_u16(), 400, "expected 400 naming {field}; body: {}", r.text);
    assert_eq!(r.error_code(), "invalid_input", "{}", r.text);
    let msg = r.error_message();
    assert!(starts_with_field(msg, field), "the message does not start with the field {field}: {msg:?}");
}

pub fn assert_not_found(r: &Resp) {
    assert_eq!(r.status.as_u16(), 404, "expected 404; body: {}", r.text);
    assert_eq!(r.error_code(), "not_found", "{}", r.text);
}

const ECHO_TASK_ID: &str = r#"echo "task $BATON_TASK_ID""#;

#[tokio::test(flavor = "multi_thread")]
async fn bad_schedules_are_refused_naming_the_field() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;
    let other = c.project().await;
    let foreign = c.template(other, json!({"script": "true"})).await;
    let cases = [
        (json!({"template_id": tid, "cron": "* * * *"}), "cron"),
        (json!({"template_id": tid, "cron": "* * * * * * *"}), "cron"),
        (json!({"template_id": tid, "cron": "0 61 * * * *"}), "cron"),
        (json!({"template_id": tid, "cron": "* 24 * * *"}), "cron"),
        (json!({"template_id": tid, "cron": "0 0 32 * *"}), "cron"),
        (json!({"template_id": tid, "cron": "*/0 * * * *"}), "cron"),
        (json!({"template_id": tid, "cron": "0 0 * * * *", "timezone": "Mars/Olympus_Mons"}), "timezone"),
        (json!({"template_id": tid, "run_at": "2030-01-01T00:00:00Z", "timezone": "Nowhere"}), "timezone"),
        (json!({"template_id": tid, "cron": "0 0 * * *", "catch_up": "all"}), "catch_up"),
        (json!({"template_id": tid, "cron": "0 0 * * *", "overlap": "queue"}), "overlap"),
        (json!({"template_id": tid}), "cron"),
        (json!({"template_id": tid, "run_at": "tomorrow"}), "run_at"),
        (json!({"cron": "0 0 * * *"}), "template_id"),
        (json!({"template_id": foreign, "cron": "0 0 * * *"}), "template_id"),
        (json!({"template_id": 987_654_321, "cron": "0 0 * * *"}), "template_id"),
    ];
    for (body, field) in &cases {
        let r = c.post(&base(pid), body.clone()).await;
        assert_field(&r, field);
    }
    let r = c.post(&base(pid), json!({"template_id": tid, "cron": "* * * *"})).await;
    assert!(r.error_message().contains("got 4"), "{}", r.error_message());
    let r = c.post(&base(pid), json!({"template_id": tid, "cron": "0 61 * * * *"})).await;
    assert!(r.error_message().contains("61"), "{}", r.error_message());
    let both = json!({"template_id": tid, "cron": "0 0 * * *", "run_at": "2030-01-01T00:00:00Z"});
    let r = c.post(&base(pid), both).await;
    assert_eq!((r.status.as_u16(), r.error_code()), (400, "invalid_input"), "{}", r.text);
    let msg = r.error_message();
    assert!(starts_with_field(msg, "cron") || starts_with_field(msg, "run_at"), "no field first: {msg}");
    assert!(msg.contains("cron") && msg.contains("run_at"), "both fields should be named: {msg}");
    let none = c.get(&base(pid)).await.expect(200);
    assert_eq!(none["items"], json!([]), "a refused schedule was created: {none}");

    // A change is checked like a creation and leaves the schedule as it was.
    let s = create(c, pid, json!({"template_id": tid, "cron": "0 3 * * *", "enabled": false})).await;
    let path = format!("{}/{}", base(pid), id_of(&s));
    assert_field(&c.patch(&path, json!({"cron": "0 3 * *"})).await, "cron");
    assert_field(&c.patch(&path, json!({"timezone": "Europe/Atlantis"})).await, "timezone");
    assert_field(&c.patch(&path, json!({"overlap": "never"})).await, "overlap");
    assert_field(&c.patch(&path, json!({"template_id": foreign})).await, "template_id");
    assert_eq!(c.get(&path).await.expect(200), s, "a refused change changed the schedule");
    for count in [0, 101] {
        assert_field(&c.get(&format!("{path}/next?count={count}")).await, "count");
    }
    let times = c.get(&format!("{path}/next?count=100")).await.expect(200);
    assert_eq!(times["times"].as_array().map(Vec::len), Some(100), "{times}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_reads_back_and_unknown_or_deleted_ones_are_not_found() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let me = c.get("/api/v1/users/me").await.expect(200);
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;
    let s = create(c, pid, json!({"template_id": tid, "cron": "0 3 * * 1-5", "timezone": "Europe/Paris"})).await;
    let sid = id_of(&s);
    let fields = [
        ("project_id", json!(pid)),
        ("template_id", json!(tid)),
        ("cron", json!("0 3 * * 1-5")),
        ("timezone", json!("Europe/Paris")),
        ("run_at", Value::Null),
        ("enabled", json!(true)),
        ("catch_up", json!("latest")),
        ("overlap", json!("allow")),
        ("created_by", me["id"].clone()),
    ];
    for (k, v) in &fields {
        assert_eq!(&s[*k], v, "{k} of {s}");
    }
    time_of(&s["created_at"]);
    time_of(&s["updated_at"]);
    let path = format!("{}/{sid}", base(pid));
    assert_eq!(c.get(&path).await.expect(200), s);
    assert_eq!(c.get(&base(pid)).await.expect(200)["items"], json!([s]));
    let changed = c.patch(&path, json!({"enabled": false, "catch_up": "none", "overlap": "skip"})).await.expect(200);
    assert_eq!(
        (&changed["enabled"], &changed["catch_up"], &changed["overlap"]),
        (&json!(false), &json!("none"), &json!("skip"))
    );
    assert_eq!(changed["cron"], s["cron"], "an absent field changed: {changed}");

    let other = c.project().await;
    assert_not_found(&c.get(&format!("{}/{sid}", base(other))).await);
    let unknown = format!("{}/987654321", base(pid));
    assert_not_found(&c.get(&unknown).await);
    assert_not_found(&c.patch(&unknown, json!({"enabled": false})).await);
    assert_not_found(&c.get(&format!("{unknown}/next")).await);
    assert_not_found(&c.get(&format!("{unknown}/fires")).await);
    assert_not_found(&c.delete(&unknown).await);

    let r = c.delete(&path).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert_not_found(&c.get(&path).await);
    assert_not_found(&c.delete(&path).await);
    assert_not_found(&c.get(&format!("{path}/next")).await);
    assert_eq!(c.get(&base(pid)).await.expect(200)["items"], json!([]));
}

/// The due times of a 02:30 local schedule from `from` on, for days `keep` allows: each at the
/// earliest instant that shows 02:30 there, and none on a day without 02:30 (spring forward).
fn at_0230(tz: Tz, from: DateTime<Utc>, n: usize, keep: impl Fn(NaiveDate) -> bool) -> Vec<DateTime<Utc>> {
    let mut day = from.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    while out.len() < n {
        let local = day.and_hms_opt(2, 30, 0).unwrap();
        if let Some(t) = tz.from_local_datetime(&local).earliest().map(|t| t.to_utc())
            && keep(day)
            && t > from
        {
            out.push(t);
        }
        day = day.succ_opt().unwrap();
    }
    out
}

/// `next?count=100` of a schedule, checked against `expected` computed from the time just
/// before and just after the request.
async fn assert_preview(
    c: &Client,
    path: &str,
    expected: impl Fn(DateTime<Utc>) -> Vec<DateTime<Utc>>,
) -> Vec<DateTime<Utc>> {
    let before = Utc::now();
    let r = c.get(&format!("{path}/next?count=100")).await.expect(200);
    let after = Utc::now();
    let times: Vec<DateTime<Utc>> = r["times"].as_array().unwrap().iter().map(time_of).collect();
    assert!(r["times"].as_array().unwrap().iter().all(|t| t.as_str().unwrap().ends_with('Z')), "{r}");
    assert!(
        times == expected(before) || times == expected(after),
        "{path}: got {times:?}, expected {:?}",
        expected(before)
    );
    times
}

#[tokio::test(flavor = "multi_thread")]
async fn next_previews_local_times_as_utc_instants_across_dst_changes() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let daily = create(c, pid, json!({"template_id": tid, "cron": "0 30 2 * * *", "timezone": "Europe/Paris"})).await;
    let path = format!("{}/{}", base(pid), id_of(&daily));
    let times = assert_preview(c, &path, |from| at_0230(paris, from, 100, |_| true)).await;
    let now = Utc::now();
    assert!(times[0] > now - TimeDelta::seconds(5) && times[0] <= now + TimeDelta::hours(25), "{times:?}");
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        let dst = w[0].with_timezone(&paris).offset() != w[1].with_timezone(&paris).offset();
        let ok = gap == TimeDelta::hours(24) || (dst && [23, 25, 47].map(TimeDelta::hours).contains(&gap));
        assert!(ok, "{} → {}: {gap} apart", w[0], w[1]);
    }
    assert_eq!(c.get(&format!("{path}/next")).await.expect(200)["times"].as_array().map(Vec::len), Some(5));

    // A hundred Sundays span both changes of two years: 02:30 does not exist on the last Sunday
    // of March (skipped) and exists twice on the last Sunday of October (due at the first).
    let body = json!({"template_id": tid, "cron": "0 30 2 * * SUN", "timezone": "Europe/Paris", "enabled": false});
    let weekly = create(c, pid, body).await;
    let path = format!("{}/{}", base(pid), id_of(&weekly));
    let sunday = |d: NaiveDate| chrono::Datelike::weekday(&d) == chrono::Weekday::Sun;
    let times = assert_preview(c, &path, |from| at_0230(paris, from, 100, sunday)).await;
    assert!(times.windows(2).any(|w| w[1] - w[0] > TimeDelta::days(13)), "no spring-forward Sunday skipped: {times:?}");
    let summer = times.iter().filter(|t| chrono::Timelike::hour(*t) == 0).count();
    assert!(summer > 0 && summer < times.len(), "every time has the same UTC offset: {times:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_second_schedule_fires_every_due_time_once_until_disabled() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": ECHO_TASK_ID})).await;
    let s = create(c, pid, json!({"template_id": tid, "cron": "* * * * * *"})).await;
    let (sid, created) = (id_of(&s), time_of(&s["created_at"]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let disabled = disable(c, pid, sid).await;
    // A change takes effect within a second; after that, nothing more may fire.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = fires(c, pid, sid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fires(c, pid, sid).await, all, "fires appeared after the schedule was disabled");

    assert!(all.len() >= 3, "only {} fires in 5 s: {}", all.len(), dues(&all));
    assert_every_second(&all);
    let (first, last) = (all[0].due, all[all.len() - 1].due);
    assert!(first > created && first <= created + TimeDelta::seconds(3), "first due {first}, created {created}");
    assert!(last >= disabled - TimeDelta::seconds(2), "it stopped firing at {last}, disabled at {disabled}");
    assert!(last <= disabled + TimeDelta::seconds(1), "it fired at {last}, after the disable at {disabled}");
    assert!(all.iter().all(|f| f.status == "fired" && f.reason.is_none()), "{all:?}");
    assert_tasks_of_fires(c, pid, sid, &all).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_fires_once_and_then_disables_itself() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": ECHO_TASK_ID})).await;
    let soon = Utc::now() + TimeDelta::seconds(2);
    let run_at = DateTime::from_timestamp_millis(soon.timestamp_millis()).unwrap();
    let s = create(c, pid, json!({"template_id": tid, "run_at": run_at.to_rfc3339()})).await;
    let (sid, path) = (id_of(&s), format!("{}/{}", base(pid), id_of(&s)));
    assert_eq!((&s["cron"], s["enabled"].as_bool(), time_of(&s["run_at"])), (&Value::Null, Some(true), run_at), "{s}");
    let next = c.get(&format!("{path}/next")).await.expect(200);
    assert_eq!(next["times"].as_array().unwrap().iter().map(time_of).collect::<Vec<_>>(), [run_at], "{next}");

    wait_fires(c, pid, sid, Duration::from_secs(15), |f| !f.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = fires(c, pid, sid).await;
    assert_eq!(all.len(), 1, "a one-shot fired {} times: {all:?}", all.len());
    assert_eq!((all[0].due, all[0].status.as_str()), (run_at, "fired"), "{all:?}");
    assert_tasks_of_fires(c, pid, sid, &all).await;
    let after = c.get(&path).await.expect(200);
    assert_eq!(after["enabled"], false, "the one-shot is still enabled after its fire: {after}");
    assert_eq!(c.get(&format!("{path}/next")).await.expect(200)["times"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn overlap_skip_records_skipped_fires_while_the_previous_task_runs() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": format!("{ECHO_TASK_ID}; sleep 3")})).await;
    let s = create(c, pid, json!({"template_id": tid, "cron": "* * * * * *", "overlap": "skip"})).await;
    let sid = id_of(&s);
    tokio::time::sleep(Duration::from_secs(8)).await;
    disable(c, pid, sid).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = fires(c, pid, sid).await;
    assert_every_second(&all);
    assert_eq!(all.first().map(|f| f.status.as_str()), Some("fired"), "{}", dues(&all));
    let fired = all.iter().filter(|f| f.status == "fired").count();
    let skipped = all.iter().filter(|f| f.status == "skipped").count();
    assert_eq!(fired + skipped, all.len(), "fires neither fired nor skipped: {all:?}");
    assert!(fired >= 2 && skipped >= 2, "{fired} fired and {skipped} skipped in 8 s of `sleep 3`: {}", dues(&all));

    let tasks = assert_tasks_of_fires(c, pid, sid, &all).await;
    let finished: Vec<(i64, DateTime<Utc>)> = tasks.iter().map(|t| (id_of(t), time_of(&t["finished_at"]))).collect();
    for w in tasks.windows(2) {
        let (prev_end, next_start) = (time_of(&w[0]["finished_at"]), time_of(&w[1]["created_at"]));
        assert!(next_start >= prev_end, "two tasks of the schedule were unfinished at once: {} and {}", w[0], w[1]);
    }
    // Each skip names the task of the latest fire before it, which had not finished then.
    let mut running = None;
    for f in &all {
        if f.status == "fired" {
            running = f.task;
            continue;
        }
        let id = running.unwrap();
        assert_eq!(f.task, None, "a skipped fire with a task: {f:?}");
        let reason = f.reason.as_deref().unwrap_or_else(|| panic!("a skipped fire without a reason: {f:?}"));
        assert!(mentions_id(reason, id), "the reason of the skip at {} does not name task {id}: {reason}", f.due);
        let end = finished.iter().find(|(t, _)| *t == id).unwrap().1;
        assert!(f.due < end, "the fire at {} was skipped for task {id}, which had finished at {end}", f.due);
    }
}

/// Sleeps until `ms` milliseconds past the next whole second.
async fn sleep_until_past_second(ms: u32) {
    let into = Utc::now().timestamp_subsec_millis();
    let wait = if into < ms { ms - into } else { 1000 + ms - into };
    tokio::time::sleep(Duration::from_millis(u64::from(wait))).await;
}

/// A per-second schedule while the only node is down for four seconds: the due times missed in
/// the outage fire once at most (`latest`: the last one before the restart; `none`: not at all),
/// never as a burst, and the schedule then fires every second again.
async fn catch_up_after_an_outage(catch_up: &str) {
    let mut srv = TestServer::start().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": ECHO_TASK_ID})).await;
    let body = json!({"template_id": tid, "cron": "* * * * * *", "catch_up": catch_up});
    let sid = id_of(&create(&c, pid, body).await);
    wait_fires(&c, pid, sid, Duration::from_secs(10), |f| f.len() >= 2).await;
    let stopping = Utc::now();
    srv.shutdown().await;
    let stopped = Utc::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Restarting just after a whole second makes that second the latest due time before the
    // restart, and the next one come after the node is up again (unless it takes ~1 s to start).
    sleep_until_past_second(30).await;
    let restarting = Utc::now();
    let srv = srv.restart().await;
    let up = Utc::now();
    let c = srv.client.clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    disable(&c, pid, sid).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = fires(&c, pid, sid).await;
    eprintln!("stop {stopping}..{stopped}, restart {restarting}..{up}; fires: {}", dues(&all));

    let before: Vec<Fire> = all.iter().filter(|f| f.due <= stopped).cloned().collect();
    let outage: Vec<Fire> = all.iter().filter(|f| f.due > stopped && f.due < restarting).cloned().collect();
    let resumed: Vec<Fire> = all.iter().filter(|f| f.due > stopped).cloned().collect();
    assert!(before.len() >= 2, "{}", dues(&all));
    assert_every_second(&before);
    assert!(
        before[before.len() - 1].due >= stopping - TimeDelta::seconds(2),
        "it stopped firing early: {}",
        dues(&all)
    );
    let start_up = up - restarting;
    assert!(start_up < TimeDelta::milliseconds(900), "the restart took {start_up}: too slow to judge the first fire");
    let latest_missed = whole_second(restarting);
    match catch_up {
        "latest" => {
            let got: Vec<_> = outage.iter().map(|f| f.due).collect();
            assert_eq!(
                got,
                [latest_missed],
                "catch_up latest: due times of the outage that fired; all: {}",
                dues(&all)
            );
        }
        _ => assert!(outage.is_empty(), "catch_up none fired missed due times: {}", dues(&all)),
    }
    // After the restart, due times fire one by one again from the first one due after it.
    assert_every_second(&resumed);
    assert!(resumed.len() >= 3, "it did not fire every second after the restart: {}", dues(&all));
    let first = if catch_up == "latest" { latest_missed } else { latest_missed + TimeDelta::seconds(1) };
    assert_eq!(resumed[0].due, first, "{}", dues(&all));
    assert!(all.iter().all(|f| f.status == "fired"), "{all:?}");
    assert_tasks_of_fires(&c, pid, sid, &all).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_latest_fires_only_the_last_due_time_missed_in_an_outage() {
    catch_up_after_an_outage("latest").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_none_fires_no_due_time_missed_in_an_outage() {
    catch_up_after_an_outage("none").await;
}
