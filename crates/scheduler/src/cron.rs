//! Cron schedules: a cron expression read in an IANA time zone, and its due times as Unix
//! instants. Pure computation, no I/O.
//!
//! The expression is matched against local wall-clock time, and one definition turns matching
//! local times into instants: a matching local time is due at the earliest instant that shows it,
//! if there is one. So a local time in a spring-forward gap is skipped (not moved to after the
//! gap), and a local time that happens twice is due once, at its first occurrence — even an
//! every-minute schedule is silent during the second pass of a repeated hour. The due instant
//! grows with the local time, which lets the searches jump over a gap or a repeated range by
//! bisection instead of stepping through it second by second.
//!
//! Crates: `chrono-tz` compiles the IANA database in as `chrono` time zones (chrono is already the
//! workspace's date type), so hosts need no zone files. No cron crate: `croner` 4, the best kept,
//! follows OCPS, which runs a job whose time falls in a gap at the first instant after it (02:30
//! becomes 03:00) and runs every-minute jobs in both passes of a repeated hour — the opposite of
//! both rules above — and it accepts extensions Baton does not promise (`L`, `W`, `#`, a year
//! field). Once matching is done on local fields, a cron pattern is a bitmask per field: small
//! enough to own here, and as easy to search backwards as forwards.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

/// The Gregorian calendar repeats every 400 years (146097 days, a whole number of weeks), so a
/// day pattern with no match in 400 years never matches: searches stop there.
const SEARCH_YEARS: i32 = 400;

/// The longest jump over a gap or a repeated range of local times (2^22 s, about 48 days); real
/// ones last an hour or so, a day at most (Samoa skipped 2011-12-30).
const MAX_JUMP_SECS: i64 = 1 << 22;

/// How many gaps or repeated ranges one search may jump over before giving up; a real zone has a
/// few a year and a match lies between any two of them unless the pattern only matches inside them.
const MAX_JUMPS: usize = 16;

/// One of the six fields: its name for messages, its range and its names (valued from `min`).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field { name: "second", min: 0, max: 59, names: &[] };
const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[] };
const DAY: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
// 7 is accepted as a second Sunday and folded onto 0 after parsing.
const WEEKDAY: Field =
    Field { name: "day-of-week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };

/// Hour, minute and second of a local time.
type Hms = (u32, u32, u32);

/// A parsed schedule expression in an IANA time zone. Each field is a bitmask of the values it
/// allows (bit `v` set when `v` matches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    /// Sunday is bit 0.
    weekdays: u64,
    /// Both day fields are restricted (neither starts with `*`, as crontab(5) puts it), so either
    /// one matching is enough; otherwise both must match.
    either_day: bool,
    /// No allowed month has an allowed day (e.g. Feb 30): nothing is ever due.
    never: bool,
    tz: Tz,
}

impl Cron {
    /// `expr`: 5 fields (minute hour day-of-month month day-of-week; fires at second 0) or 6 fields
    /// (second first), with `*`, lists, ranges, steps, month and weekday names, and 0 or 7 for
    /// Sunday. `timezone`: an IANA name such as "Europe/Paris" (empty = "UTC"). Errors are short
    /// messages for people, starting with what is wrong.
    pub fn parse(expr: &str, timezone: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (second, minute, hour, day, month, weekday) = match fields[..] {
            [mi, h, d, mo, w] => ("0", mi, h, d, mo, w),
            [s, mi, h, d, mo, w] => (s, mi, h, d, mo, w),
            _ => return Err(format!("cron: expected 5 or 6 fields, got {}", fields.len())),
        };
        let zone = timezone.trim();
        let tz = if zone.is_empty() {
            Tz::UTC
        } else {
            zone.parse::<Tz>().map_err(|_| format!("timezone: unknown time zone {zone:?}"))?
        };
        let (seconds, minutes, hours) =
            (parse_field(second, &SECOND)?, parse_field(minute, &MINUTE)?, parse_field(hour, &HOUR)?);
        let (days, months, weekdays) =
            (parse_field(day, &DAY)?, parse_field(month, &MONTH)?, parse_field(weekday, &WEEKDAY)?);
        let mut cron = Cron {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
            either_day: !day.starts_with('*') && !weekday.starts_with('*'),
            never: false,
            tz,
        };
        cron.never = cron.never_due();
        Ok(cron)
    }

    /// The first due time strictly after `after_ms` (Unix milliseconds), or None if there is none.
    /// Due times are whole seconds.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = after_ms.div_euclid(1000);
        let mut cursor = self.local_at(after.checked_add(1)?)?;
        for _ in 0..MAX_JUMPS {
            let local = self.next_local(cursor)?;
            match self.due_at(local) {
                Some(due) if due > after => return due.checked_mul(1000),
                // In a gap, or in the second pass of a repeated range (due at its first pass,
                // already gone): go on from the first local time that is due after `after`.
                _ => cursor = self.skip_forward(local, after)?,
            }
        }
        None
    }

    /// Up to `n` due times after `after_ms`, in order.
    pub fn next_n(&self, after_ms: i64, n: usize) -> Vec<i64> {
        if n == 0 {
            return Vec::new();
        }
        std::iter::successors(self.next_after(after_ms), |&t| self.next_after(t)).take(n).collect()
    }

    /// The latest due time `t` with `after_ms < t <= now_ms`, or None. It walks backwards from
    /// `now_ms`, so its cost does not depend on how many due times the interval holds.
    pub fn latest_between(&self, after_ms: i64, now_ms: i64) -> Option<i64> {
        let after = after_ms.div_euclid(1000);
        let now = now_ms.div_euclid(1000);
        if now <= after {
            return None;
        }
        // The latest local time due by `now` is `now`'s own, except during the second pass of a
        // repeated range: then it is the range's last second, which was due in the first pass.
        let here = self.local_at(now)?;
        let mut cursor = match self.due_at(here) {
            Some(due) if due < now => shift(self.skip_forward(here, now)?, -1)?,
            _ => here,
        };
        // Local times more than two days before `after`'s are due before it (zone offsets differ
        // by less than two days), and a pattern with no match in 400 years has none at all.
        let oldest = NaiveDate::from_ymd_opt(here.year() - SEARCH_YEARS, 1, 1).unwrap_or(NaiveDate::MIN);
        let floor = self
            .local_at(after)
            .and_then(|local| local.date().checked_sub_days(Days::new(2)))
            .map_or(oldest, |date| date.max(oldest));
        loop {
            let local = self.prev_local(cursor, floor)?;
            match self.due_at(local) {
                // Earlier local times are due earlier still.
                Some(due) if due <= after => return None,
                Some(due) if due <= now => return due.checked_mul(1000),
                // Not reached, as the cursor starts at the last local time due by `now`; stepping
                // back keeps the walk finite all the same.
                Some(_) => cursor = shift(local, -1)?,
                None => cursor = self.skip_backward(local)?,
            }
        }
    }

    /// The instant (Unix seconds) a local time is due at: its first occurrence, or None when the
    /// zone skips it.
    fn due_at(&self, local: NaiveDateTime) -> Option<i64> {
        self.tz.from_local_datetime(&local).earliest().map(|t| t.timestamp())
    }

    /// The local wall-clock time at an instant (Unix seconds).
    fn local_at(&self, secs: i64) -> Option<NaiveDateTime> {
        Some(DateTime::from_timestamp(secs, 0)?.with_timezone(&self.tz).naive_local())
    }

    /// The first local time after `from` that is due after `threshold`, when `from` is not (it is
    /// in a gap, or in a repeated range whose first pass is over). Due instants grow with local
    /// time, so that is a boundary, and bisection finds it.
    fn skip_forward(&self, from: NaiveDateTime, threshold: i64) -> Option<NaiveDateTime> {
        let k = first_holding(|k| Some(self.due_at(shift(from, k)?).is_some_and(|due| due > threshold)))?;
        shift(from, k)
    }

    /// The last local time before `from` that exists, when `from` is in a gap.
    fn skip_backward(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let k = first_holding(|k| Some(self.due_at(shift(from, -k)?).is_some()))?;
        shift(from, -k)
    }

    /// The first matching local time at or after `from`.
    fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        if self.never {
            return None;
        }
        let last_year = from.year().checked_add(SEARCH_YEARS)?;
        let mut date = from.date();
        let mut time = (from.hour(), from.minute(), from.second());
        while date.year() <= last_year {
            if !has(self.months, date.month()) {
                date = first_of_next_month(date)?;
            } else {
                if self.day_matches(date)
                    && let Some((h, m, s)) = self.next_time(time)
                {
                    return date.and_hms_opt(h, m, s);
                }
                date = date.succ_opt()?;
            }
            time = (0, 0, 0);
        }
        None
    }

    /// The last matching local time at or before `from`, on `floor` or later.
    fn prev_local(&self, from: NaiveDateTime, floor: NaiveDate) -> Option<NaiveDateTime> {
        if self.never {
            return None;
        }
        let mut date = from.date();
        let mut time = (from.hour(), from.minute(), from.second());
        while date >= floor {
            if !has(self.months, date.month()) {
                date = date.with_day(1)?.pred_opt()?;
            } else {
                if self.day_matches(date)
                    && let Some((h, m, s)) = self.prev_time(time)
                {
                    return date.and_hms_opt(h, m, s);
                }
                date = date.pred_opt()?;
            }
            time = (23, 59, 59);
        }
        None
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = has(self.days, date.day());
        let weekday = has(self.weekdays, date.weekday().num_days_from_sunday());
        if self.either_day { day || weekday } else { day && weekday }
    }

    /// The first matching time of day at or after `(h, m, s)`, if the day has one.
    fn next_time(&self, (h, m, s): Hms) -> Option<Hms> {
        let first = |mask: u64| mask.trailing_zeros();
        if has(self.hours, h) {
            if has(self.minutes, m)
                && let Some(s) = next_bit(self.seconds, s)
            {
                return Some((h, m, s));
            }
            if let Some(m) = next_bit(self.minutes, m + 1) {
                return Some((h, m, first(self.seconds)));
            }
        }
        Some((next_bit(self.hours, h + 1)?, first(self.minutes), first(self.seconds)))
    }

    /// The last matching time of day at or before `(h, m, s)`, if the day has one.
    fn prev_time(&self, (h, m, s): Hms) -> Option<Hms> {
        let last = |mask: u64| 63 - mask.leading_zeros();
        if has(self.hours, h) {
            if has(self.minutes, m)
                && let Some(s) = prev_bit(self.seconds, s)
            {
                return Some((h, m, s));
            }
            if let Some(m) = m.checked_sub(1).and_then(|m| prev_bit(self.minutes, m)) {
                return Some((h, m, last(self.seconds)));
            }
        }
        Some((prev_bit(self.hours, h.checked_sub(1)?)?, last(self.minutes), last(self.seconds)))
    }

    /// Whether no allowed month has an allowed day, so that nothing is ever due. When either day
    /// field may match, a weekday comes round every week; otherwise any real date falls on every
    /// weekday within 400 years, so only dates that never exist (Feb 30, Apr 31) matter.
    fn never_due(&self) -> bool {
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if self.either_day {
            return false;
        }
        !(1..=12u32).any(|month| {
            let days_in_month = ((1u64 << (LONGEST[month as usize - 1] + 1)) - 1) & !1;
            has(self.months, month) && self.days & days_in_month != 0
        })
    }
}

/// Parses one field into a bitmask of the values it allows.
fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut mask = 0;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, field)?)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((lo, hi)) = range.split_once('-') {
            (field.value(lo)?, field.value(hi)?)
        } else {
            // `a/n` means `a-max/n`, as in most crons.
            let value = field.value(range)?;
            (value, if step.is_some() { field.max } else { value })
        };
        if lo > hi {
            return Err(format!("cron: {} range {range:?} runs backwards", field.name));
        }
        for value in (lo..=hi).step_by(step.unwrap_or(1)) {
            mask |= 1 << value;
        }
    }
    Ok(mask)
}

fn parse_step(text: &str, field: &Field) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(step) if step > 0 => Ok(step),
        _ => Err(format!("cron: {} step {text:?} is not a whole number of at least 1", field.name)),
    }
}

impl Field {
    /// One value: a number in range, or a name (any case).
    fn value(&self, text: &str) -> Result<u32, String> {
        let value = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to parse is out of range too.
            text.parse::<u32>().unwrap_or(u32::MAX)
        } else if let Some(i) = self.names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
            self.min + i as u32
        } else {
            return Err(format!("cron: bad {} value {text:?}", self.name));
        };
        if value < self.min || value > self.max {
            return Err(format!("cron: {} {text} is out of range {}-{}", self.name, self.min, self.max));
        }
        Ok(value)
    }
}

fn has(mask: u64, value: u32) -> bool {
    value < 64 && (mask >> value) & 1 == 1
}

/// The smallest value in `mask` that is at least `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let rest = mask.checked_shr(from)?;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// The largest value in `mask` that is at most `to`.
fn prev_bit(mask: u64, to: u32) -> Option<u32> {
    let low = if to >= 63 { mask } else { mask & ((1 << (to + 1)) - 1) };
    (low != 0).then(|| 63 - low.leading_zeros())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(date.year(), month + 1, 1),
    }
}

fn shift(local: NaiveDateTime, secs: i64) -> Option<NaiveDateTime> {
    local.checked_add_signed(TimeDelta::try_seconds(secs)?)
}

/// The smallest `k` in 1..=MAX_JUMP_SECS for which `holds(k)`, given a `holds` that is false up
/// to some point and true from there on: doubling then bisecting, so crossing an hour costs
/// about 24 checks rather than 3600.
fn first_holding(holds: impl Fn(i64) -> Option<bool>) -> Option<i64> {
    let (mut lo, mut hi) = (0, 1);
    while !holds(hi)? {
        lo = hi;
        hi *= 2;
        if hi > MAX_JUMP_SECS {
            return None;
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if holds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests;
