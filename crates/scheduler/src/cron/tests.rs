//! Tests for cron parsing and due times, daylight saving transitions included. Expected times are
//! written with their local offset so that each one shows which side of a transition it is on.

use chrono::{DateTime, SecondsFormat};

use super::Cron;

fn cron(expr: &str, tz: &str) -> Cron {
    Cron::parse(expr, tz).unwrap()
}

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

/// As UTC RFC 3339, so that failures print readable times.
fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn assert_times(got: &[i64], want: &[&str]) {
    let got: Vec<String> = got.iter().map(|&t| iso(t)).collect();
    let want: Vec<String> = want.iter().map(|t| iso(ms(t))).collect();
    assert_eq!(got, want);
}

fn next(expr: &str, tz: &str, after: &str, n: usize) -> Vec<i64> {
    cron(expr, tz).next_n(ms(after), n)
}

fn parse_err(expr: &str, tz: &str) -> String {
    Cron::parse(expr, tz).unwrap_err()
}

#[test]
fn five_fields_fire_at_second_zero_and_six_fields_take_seconds_first() {
    assert_times(&next("0 9 * * *", "", "2025-01-01T10:00:00Z", 2), &["2025-01-02T09:00:00Z", "2025-01-03T09:00:00Z"]);
    assert_times(&next("30 0 9 * * *", "UTC", "2025-01-01T08:00:00Z", 1), &["2025-01-01T09:00:30Z"]);
    assert_times(
        &next("*/20 * * * * *", "UTC", "2025-01-01T00:00:00Z", 4),
        &["2025-01-01T00:00:20Z", "2025-01-01T00:00:40Z", "2025-01-01T00:01:00Z", "2025-01-01T00:01:20Z"],
    );
}

#[test]
fn lists_ranges_and_steps() {
    assert_times(
        &next("0 8-18/5 * * *", "UTC", "2025-01-01T00:00:00Z", 4),
        &["2025-01-01T08:00:00Z", "2025-01-01T13:00:00Z", "2025-01-01T18:00:00Z", "2025-01-02T08:00:00Z"],
    );
    assert_times(
        &next("5,10-11,50/5 0 * * *", "UTC", "2025-01-01T00:00:00Z", 6),
        &[
            "2025-01-01T00:05:00Z",
            "2025-01-01T00:10:00Z",
            "2025-01-01T00:11:00Z",
            "2025-01-01T00:50:00Z",
            "2025-01-01T00:55:00Z",
            "2025-01-02T00:05:00Z",
        ],
    );
    assert_eq!(cron("*/15 * * * *", "UTC"), cron("0,15,30,45 * * * *", "UTC"));
}

#[test]
fn month_and_weekday_names_in_any_case() {
    assert_eq!(cron("0 0 * jan,Jul MON-fri", "UTC"), cron("0 0 * 1,7 1-5", "UTC"));
    // 2025-01-31 is a Friday; February is not allowed, so July comes next.
    assert_times(
        &next("0 0 * JAN,JUL MON-FRI", "UTC", "2025-01-30T12:00:00Z", 2),
        &["2025-01-31T00:00:00Z", "2025-07-01T00:00:00Z"],
    );
}

#[test]
fn sunday_is_0_or_7() {
    let sunday = cron("0 0 * * 0", "UTC");
    assert_eq!(cron("0 0 * * 7", "UTC"), sunday);
    assert_eq!(cron("0 0 * * SUN", "UTC"), sunday);
    assert_eq!(cron("0 0 * * 5-7", "UTC"), cron("0 0 * * 0,5,6", "UTC"));
    assert_times(&sunday.next_n(ms("2025-01-01T00:00:00Z"), 1), &["2025-01-05T00:00:00Z"]);
}

#[test]
fn either_day_field_is_enough_when_both_are_restricted() {
    // The 13th, and every Friday: Jan 3, 10 and 17 2025 are Fridays, Jan 13 a Monday.
    assert_times(
        &next("0 0 13 * FRI", "UTC", "2025-01-01T00:00:00Z", 4),
        &["2025-01-03T00:00:00Z", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z", "2025-01-17T00:00:00Z"],
    );
    // One field starting with `*` is not restricted, so both must match (crontab(5)): Mondays
    // that fall on an odd day of the month.
    assert_times(
        &next("0 0 */2 * MON", "UTC", "2025-01-01T00:00:00Z", 3),
        &["2025-01-13T00:00:00Z", "2025-01-27T00:00:00Z", "2025-02-03T00:00:00Z"],
    );
    assert_times(&next("0 0 * * MON", "UTC", "2025-01-01T00:00:00Z", 1), &["2025-01-06T00:00:00Z"]);
}

#[test]
fn errors_say_what_is_wrong() {
    assert_eq!(parse_err("* * * *", "UTC"), "cron: expected 5 or 6 fields, got 4");
    assert_eq!(parse_err("0 0 0 1 1 * 2030", "UTC"), "cron: expected 5 or 6 fields, got 7");
    assert_eq!(parse_err("", "UTC"), "cron: expected 5 or 6 fields, got 0");
    assert_eq!(parse_err("* * * * *", "Mars/Olympus"), "timezone: unknown time zone \"Mars/Olympus\"");
    assert_eq!(parse_err("60 * * * *", "UTC"), "cron: minute 60 is out of range 0-59");
    assert_eq!(parse_err("0 24 * * *", "UTC"), "cron: hour 24 is out of range 0-23");
    assert_eq!(parse_err("0 0 0 * *", "UTC"), "cron: day-of-month 0 is out of range 1-31");
    assert_eq!(parse_err("0 0 * 13 *", "UTC"), "cron: month 13 is out of range 1-12");
    assert_eq!(parse_err("0 0 * * 8", "UTC"), "cron: day-of-week 8 is out of range 0-7");
    assert_eq!(parse_err("60 * * * * *", "UTC"), "cron: second 60 is out of range 0-59");
    assert_eq!(parse_err("99999999999 * * * *", "UTC"), "cron: minute 99999999999 is out of range 0-59");
    assert_eq!(parse_err("*/0 * * * *", "UTC"), "cron: minute step \"0\" is not a whole number of at least 1");
    assert_eq!(parse_err("0 5-1 * * *", "UTC"), "cron: hour range \"5-1\" runs backwards");
    assert_eq!(parse_err("0 0 * FOO *", "UTC"), "cron: bad month value \"FOO\"");
    assert_eq!(parse_err("MON * * * *", "UTC"), "cron: bad minute value \"MON\"");
    assert_eq!(parse_err("1,,2 * * * *", "UTC"), "cron: bad minute value \"\"");
    assert_eq!(parse_err("-5 * * * *", "UTC"), "cron: bad minute value \"\"");
    assert_eq!(parse_err("a b c d e", "UTC"), "cron: bad minute value \"a\"");
    assert!(parse_err("? * * * *", "UTC").starts_with("cron: bad minute value"));
    assert!(parse_err("0 0 L * *", "UTC").starts_with("cron: bad day-of-month value"));
    assert!(Cron::parse("  0  9 * * *  ", " Europe/Paris ").is_ok());
}

#[test]
fn next_after_is_strictly_after_and_whole_seconds() {
    let every_second = cron("* * * * * *", "UTC");
    let t = ms("2025-01-01T00:00:00Z");
    assert_eq!(every_second.next_after(t), Some(t + 1000));
    assert_eq!(every_second.next_after(t + 1), Some(t + 1000));
    assert_eq!(every_second.next_after(t + 999), Some(t + 1000));
    assert_eq!(every_second.next_after(t - 1), Some(t));
    assert_eq!(every_second.next_after(-1), Some(0));
    let hourly = cron("0 * * * *", "UTC");
    assert_eq!(hourly.next_after(t), Some(ms("2025-01-01T01:00:00Z")));
    assert_eq!(hourly.next_after(t - 1), Some(t));
    // Many cheap calls: each is a few bit operations, not a scan.
    let mut at = t;
    for _ in 0..100_000 {
        at = every_second.next_after(at).unwrap();
    }
    assert_eq!(at, t + 100_000_000);
}

#[test]
fn next_n_in_utc() {
    assert_times(
        &next("0 0 1 * *", "UTC", "2024-11-15T00:00:00Z", 4),
        &["2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"],
    );
    assert_times(&next("0 12 29 2 *", "UTC", "2024-03-01T00:00:00Z", 1), &["2028-02-29T12:00:00Z"]);
    assert!(next("* * * * *", "UTC", "2025-01-01T00:00:00Z", 0).is_empty());
}

#[test]
fn dates_that_never_exist_give_none_at_once() {
    for expr in ["0 0 30 2 *", "0 0 31 2,4,6,9,11 *", "* * * 30 2 *"] {
        let c = cron(expr, "Europe/Paris");
        assert_eq!(c.next_after(0), None, "{expr}");
        assert!(c.next_n(0, 3).is_empty(), "{expr}");
        assert_eq!(c.latest_between(i64::MIN, ms("2025-06-01T00:00:00Z")), None, "{expr}");
    }
    // With a weekday too, either may match, so Mondays in February fire.
    assert_times(&next("0 0 30 2 MON", "UTC", "2025-01-01T00:00:00Z", 1), &["2025-02-03T00:00:00Z"]);
}

#[test]
fn extreme_instants_give_none_instead_of_panicking() {
    let c = cron("* * * * * *", "Europe/Paris");
    assert_eq!(c.next_after(i64::MAX), None);
    assert_eq!(c.latest_between(i64::MAX - 1, i64::MAX), None);
    assert_eq!(c.latest_between(i64::MIN, ms("2025-01-01T00:00:00Z")), Some(ms("2025-01-01T00:00:00Z")));
}

#[test]
fn paris_spring_forward_skips_the_missing_time() {
    // 2025-03-30: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that day.
    assert_times(
        &next("30 2 * * *", "Europe/Paris", "2025-03-28T12:00:00Z", 3),
        &["2025-03-29T02:30:00+01:00", "2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"],
    );
    // Other times that day are unaffected.
    assert_times(
        &next("30 1,3 * * *", "Europe/Paris", "2025-03-30T00:00:00Z", 2),
        &["2025-03-30T01:30:00+01:00", "2025-03-30T03:30:00+02:00"],
    );
}

#[test]
fn paris_fall_back_fires_once_at_the_first_occurrence() {
    // 2025-10-26: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice; only the CEST one is due.
    assert_times(
        &next("30 2 * * *", "Europe/Paris", "2025-10-25T12:00:00Z", 2),
        &["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"],
    );
    // Asked from inside the second pass, the next run is the next day's.
    assert_times(&next("30 2 * * *", "Europe/Paris", "2025-10-26T02:10:00+01:00", 1), &["2025-10-27T02:30:00+01:00"]);
}

#[test]
fn paris_every_minute_runs_through_both_transitions() {
    // The gap: every real minute, 01:59 CET followed by 03:00 CEST.
    let runs = next("* * * * *", "Europe/Paris", "2025-03-29T23:59:59Z", 180);
    assert_eq!(runs[0], ms("2025-03-30T00:00:00Z"));
    assert!(runs.windows(2).all(|w| w[1] - w[0] == 60_000));
    assert_times(
        &next("* * * * *", "Europe/Paris", "2025-03-30T01:58:30+01:00", 2),
        &["2025-03-30T01:59:00+01:00", "2025-03-30T03:00:00+02:00"],
    );
    // The overlap: the first pass of 02:xx runs, the second does not, then 03:00 CET.
    assert_times(
        &next("* * * * *", "Europe/Paris", "2025-10-26T02:58:30+02:00", 2),
        &["2025-10-26T02:59:00+02:00", "2025-10-26T03:00:00+01:00"],
    );
    assert_times(&next("* * * * *", "Europe/Paris", "2025-10-26T02:10:00+01:00", 1), &["2025-10-26T03:00:00+01:00"]);
    assert_times(&next("* * * * * *", "Europe/Paris", "2025-10-26T02:59:59+01:00", 1), &["2025-10-26T03:00:00+01:00"]);
    let c = cron("* * * * *", "Europe/Paris");
    // Five real hours hold 300 minutes, 60 of them silent; the others run one minute apart.
    let runs = c.next_n(ms("2025-10-25T23:00:00Z"), 240);
    let in_second_pass = |&t: &i64| (ms("2025-10-26T01:00:00Z")..ms("2025-10-26T02:00:00Z")).contains(&t);
    assert!(!runs.iter().any(in_second_pass));
    assert_eq!(runs.windows(2).filter(|w| w[1] - w[0] != 60_000).count(), 1);
    assert_eq!(iso(runs[239]), "2025-10-26T04:00:00Z");
}

#[test]
fn new_york_two_am_transitions() {
    // 2025-03-09: 02:00 EST becomes 03:00 EDT.
    assert_times(
        &next("30 2 * * *", "America/New_York", "2025-03-08T12:00:00Z", 2),
        &["2025-03-10T02:30:00-04:00", "2025-03-11T02:30:00-04:00"],
    );
    // 2025-11-02: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice.
    assert_times(
        &next("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", 2),
        &["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"],
    );
    assert_times(
        &next("0 */30 * * * *", "America/New_York", "2025-11-02T00:45:00-04:00", 4),
        &[
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:30:00-04:00",
            "2025-11-02T02:00:00-05:00",
            "2025-11-02T02:30:00-05:00",
        ],
    );
}

#[test]
fn lord_howe_half_hour_transitions() {
    // 2025-10-05: 02:00 (+10:30) becomes 02:30 (+11:00), so 02:15 does not exist but 02:45 does.
    assert_times(
        &next("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T00:00:00Z", 2),
        &["2025-10-06T02:15:00+11:00", "2025-10-07T02:15:00+11:00"],
    );
    assert_times(&next("45 2 * * *", "Australia/Lord_Howe", "2025-10-04T00:00:00Z", 1), &["2025-10-05T02:45:00+11:00"]);
    // 2025-04-06: 02:00 (+11:00) becomes 01:30 (+10:30), so 01:45 happens twice.
    assert_times(
        &next("45 1 * * *", "Australia/Lord_Howe", "2025-04-05T00:00:00Z", 2),
        &["2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"],
    );
    let c = cron("*/10 * * * *", "Australia/Lord_Howe");
    assert_times(
        &c.next_n(ms("2025-04-06T01:45:00+11:00"), 3),
        &["2025-04-06T01:50:00+11:00", "2025-04-06T02:00:00+10:30", "2025-04-06T02:10:00+10:30"],
    );
}

#[test]
fn latest_between_excludes_after_and_includes_now() {
    let c = cron("0 * * * *", "UTC");
    let due = ms("2025-01-01T10:00:00Z");
    assert_eq!(c.latest_between(due - 1, due), Some(due));
    assert_eq!(c.latest_between(due, due + 3_599_999), None);
    assert_eq!(c.latest_between(due, due + 3_600_000), Some(due + 3_600_000));
    assert_eq!(c.latest_between(due - 1, due - 1), None);
    assert_eq!(c.latest_between(due + 1000, due), None);
    assert_eq!(c.latest_between(due - 7_200_000, due + 1_800_000), Some(due));
    assert_eq!(c.latest_between(due + 1, due + 999), None);
}

#[test]
fn latest_between_over_long_gaps() {
    let every_second = cron("* * * * * *", "Europe/Paris");
    let now = ms("2025-06-01T12:34:56.789Z");
    assert_eq!(every_second.latest_between(now - 366 * 86_400_000, now), Some(ms("2025-06-01T12:34:56Z")));
    assert_eq!(every_second.latest_between(i64::MIN, now), Some(ms("2025-06-01T12:34:56Z")));
    let daily = cron("0 30 2 * * *", "Europe/Paris");
    assert_eq!(daily.latest_between(0, now), Some(ms("2025-06-01T02:30:00+02:00")));
    let leap_day = cron("0 0 29 2 *", "UTC");
    assert_eq!(leap_day.latest_between(0, now), Some(ms("2024-02-29T00:00:00Z")));
    assert_eq!(leap_day.latest_between(ms("2024-03-01T00:00:00Z"), now), None);
}

#[test]
fn latest_between_across_transitions() {
    let minutely = cron("* * * * *", "Europe/Paris");
    // In the second pass of 02:xx, the latest run was the first pass's 02:59.
    let second_pass = ms("2025-10-26T02:30:30+01:00");
    assert_times(&[minutely.latest_between(0, second_pass).unwrap()], &["2025-10-26T02:59:00+02:00"]);
    let daily = cron("30 2 * * *", "Europe/Paris");
    assert_eq!(daily.latest_between(ms("2025-03-30T00:00:00Z"), ms("2025-03-30T22:00:00Z")), None);
    assert_times(&[daily.latest_between(0, ms("2025-03-30T22:00:00Z")).unwrap()], &["2025-03-29T02:30:00+01:00"]);
    assert_times(&[daily.latest_between(0, ms("2025-10-26T22:00:00Z")).unwrap()], &["2025-10-26T02:30:00+02:00"]);
}

/// latest_between walks backwards and next_after forwards; across every transition above they
/// must agree on every instant of the window.
#[test]
fn latest_between_agrees_with_walking_forwards() {
    let cases = [
        ("* * * * *", "Europe/Paris", "2025-03-30T00:30:00Z"),
        ("* * * * *", "Europe/Paris", "2025-10-26T00:30:00Z"),
        ("*/7 2 * * *", "Europe/Paris", "2025-10-26T00:30:00Z"),
        ("30 1,2 * * *", "America/New_York", "2025-11-02T04:30:00Z"),
        ("30 1,2 * * *", "America/New_York", "2025-03-09T05:30:00Z"),
        ("*/10 * * * *", "Australia/Lord_Howe", "2025-04-05T14:00:00Z"),
        ("*/10 * * * *", "Australia/Lord_Howe", "2025-10-04T15:00:00Z"),
    ];
    for (expr, tz, from) in cases {
        let c = cron(expr, tz);
        let after = ms(from);
        let runs = c.next_n(after, 1000);
        // Every 30 s over three hours, and on each run and the second before it.
        let probes = (0..360).map(|i| after + i * 30_000).chain(runs.iter().flat_map(|&t| [t, t - 1]));
        for now in probes.filter(|&now| now < after + 3 * 3_600_000) {
            let want = runs.iter().copied().take_while(|&t| t <= now).last();
            assert_eq!(c.latest_between(after, now), want, "{expr} in {tz} at {}", iso(now));
        }
    }
}

#[test]
fn clone_and_debug() {
    let c = cron("0 0 * * *", "Europe/Paris");
    assert_eq!(c.clone(), c);
    assert!(format!("{c:?}").contains("Europe/Paris") || format!("{c:?}").contains("Europe__Paris"));
}
