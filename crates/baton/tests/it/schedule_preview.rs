//! Previews of a cron expression that is not saved (`GET …/schedules/preview?cron=&timezone=&count=`),
//! as a schedule form shows them: the due times a saved schedule with that expression would
//! have — local times in the zone, across daylight saving changes — and the errors creating it
//! would give, naming the field. `preview` is a path of its own beside `/schedules/{sid}`.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::{Value, json};

use baton_testkit::{Client, TestServer};

use crate::schedules::{assert_field, assert_not_found, id_of, time_of};

fn base(pid: i64) -> String {
    format!("/api/v1/projects/{pid}/schedules")
}

/// Percent-encodes a query value (spaces, slashes, commas of a cron expression or a zone).
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn times(r: &Value) -> Vec<DateTime<Utc>> {
    r["times"].as_array().unwrap_or_else(|| panic!("no times: {r}")).iter().map(time_of).collect()
}

async fn preview(c: &Client, pid: i64, query: &str) -> Vec<DateTime<Utc>> {
    times(&c.get(&format!("{}/preview?{query}", base(pid))).await.expect(200))
}

/// The first `n` Sundays' `h:m` in `tz` after `from`, each at the earliest instant that shows it
/// (none on a Sunday that skips it).
fn sundays_at(tz: Tz, (h, m): (u32, u32), from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut day: NaiveDate = from.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    while out.len() < n {
        let local = day.and_hms_opt(h, m, 0).unwrap();
        if let Some(t) = tz.from_local_datetime(&local).earliest().map(|t| t.to_utc())
            && day.weekday() == Weekday::Sun
            && t > from
        {
            out.push(t);
        }
        day = day.succ_opt().unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_shows_what_a_saved_schedule_would_fire() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;

    // Defaults: five times, in UTC.
    let before = Utc::now();
    let daily = preview(c, pid, &format!("cron={}", enc("0 0 * * *"))).await;
    assert_eq!(daily.len(), 5, "{daily:?}");
    assert!(daily[0] > before && daily[0] <= before + TimeDelta::days(1), "{daily:?}");
    assert!(daily.iter().all(|t| (t.hour(), t.minute(), t.second()) == (0, 0, 0)), "{daily:?}");
    assert!(daily.windows(2).all(|w| w[1] - w[0] == TimeDelta::days(1)), "{daily:?}");

    // A hundred Sundays in Berlin span both changes of two years: 03:00 is an hour earlier in
    // UTC in summer; 02:30 does not exist on the last Sunday of March (skipped) and happens twice
    // on the last Sunday of October (due at the first).
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    for (cron, hm) in [("0 3 * * SUN", (3, 0)), ("30 2 * * 0", (2, 30))] {
        let query = format!("cron={}&timezone={}&count=100", enc(cron), enc("Europe/Berlin"));
        let before = Utc::now();
        let got = preview(c, pid, &query).await;
        let after = Utc::now();
        let want = |from| sundays_at(berlin, hm, from, 100);
        assert!(got == want(before) || got == want(after), "{cron}: got {got:?}, expected {:?}", want(before));
        let offsets: std::collections::BTreeSet<u32> = got.iter().map(|t| t.hour()).collect();
        assert_eq!(offsets.len(), 2, "{cron}: not across a DST change: {got:?}");
        if hm == (2, 30) {
            assert!(got.windows(2).any(|w| w[1] - w[0] > TimeDelta::days(13)), "no Sunday skipped: {got:?}");
        }

        // The same expression saved: its `next` is the preview, and it reads back by its
        // numeric id beside the `preview` path.
        let body = json!({"template_id": tid, "cron": cron, "timezone": "Europe/Berlin", "enabled": false});
        let s = c.post(&base(pid), body).await.expect(201);
        let sid = id_of(&s);
        let next = times(&c.get(&format!("{}/{sid}/next?count=100", base(pid))).await.expect(200));
        let again = preview(c, pid, &query).await;
        assert!(next == got || next == again, "{cron}: next {next:?} is not the preview {got:?}");
        let read = c.get(&format!("{}/{sid}", base(pid))).await.expect(200);
        assert_eq!(read, s, "GET /schedules/{sid}");
    }
    assert_eq!(c.get(&base(pid)).await.expect(200)["items"].as_array().map(Vec::len), Some(2), "a preview saved");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_preview_is_refused_naming_the_field() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let pid = c.project().await;
    let at = |query: String| format!("{}/preview?{query}", base(pid));
    let cases = [
        (format!("cron={}", enc("* * * *")), "cron", "got 4"),
        (format!("cron={}", enc("* * * * * * *")), "cron", "got 7"),
        (format!("cron={}", enc("0 61 * * * *")), "cron", "61"),
        (format!("cron={}", enc("*/0 * * * *")), "cron", "step"),
        ("timezone=UTC".to_owned(), "cron", "required"),
        (format!("cron={}&timezone={}", enc("0 3 * * *"), enc("Mars/Olympus_Mons")), "timezone", "Mars/Olympus_Mons"),
        (format!("cron={}&count=0", enc("0 3 * * *")), "count", "between 1 and 100"),
        (format!("cron={}&count=101", enc("0 3 * * *")), "count", "between 1 and 100"),
    ];
    for (query, field, mention) in &cases {
        let r = c.get(&at(query.clone())).await;
        assert_field(&r, field);
        assert!(r.error_message().contains(mention), "{query}: the message does not say {mention:?}: {}", r.text);
    }
    let r = c.get(&at(format!("cron={}&every=1", enc("0 3 * * *")))).await;
    assert_eq!((r.status.as_u16(), r.error_code()), (400, "invalid_input"), "{}", r.text);

    // The bounds themselves are fine; an expression that never matches has no times.
    let one = preview(c, pid, &format!("cron={}&count=1", enc("0 3 * * *"))).await;
    assert_eq!(one.len(), 1);
    let hundred = preview(c, pid, &format!("cron={}&count=100", enc("*/5 * * * * *"))).await;
    assert_eq!(hundred.len(), 100);
    assert!(hundred.windows(2).all(|w| w[1] - w[0] == TimeDelta::seconds(5)), "{hundred:?}");
    assert_eq!(preview(c, pid, &format!("cron={}", enc("0 0 30 2 *"))).await, Vec::<DateTime<Utc>>::new());

    // Who cannot see the project gets its 404 before anything about the query.
    let outsider = crate::permissions::user(&srv, "preview-outsider").await;
    assert_not_found(&outsider.client.get(&at(format!("cron={}", enc("0 3 * * *")))).await);
    assert_not_found(&outsider.client.get(&at(format!("cron={}", enc("bad")))).await);
    assert_not_found(&c.get(&format!("{}/preview?cron={}", base(pid + 1000), enc("0 3 * * *"))).await);
}
