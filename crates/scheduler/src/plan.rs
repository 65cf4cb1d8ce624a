//! Which due times of a schedule to fire now: a pure function of the schedule, the last due time
//! handled (`cursor`) and the clock, so the catch-up rules are tested with any clock.
//!
//! - Due times of the last [`GRACE_MS`] that came while this node was up fire one by one, in
//!   order: a node that was busy for a moment still fires each of them (once, whoever gets there
//!   first).
//! - Older ones, and all that came before this node started, were missed (the whole cluster was
//!   down, or another node fired them): with `catch_up: latest` only the most recent of them fires
//!   — and only when no recent due time does; with `none` they are dropped. Never a burst. (When
//!   another node was up, it recorded them, and the unique fire row turns this attempt into a
//!   no-op.)

use crate::cron::Cron;

/// How late a due time may be and still fire as itself.
pub const GRACE_MS: i64 = 5_000;
/// At most this many recent due times fire in one pass (a per-second schedule after a stall).
const MAX_RECENT: usize = 10;

/// What a schedule fires on.
#[derive(Debug, Clone)]
pub enum When {
    Cron(Cron),
    Once(i64),
}

/// What [`due`] looks at besides the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The last due time handled.
    pub cursor: i64,
    pub now: i64,
    /// When this node started firing: earlier due times count as missed.
    pub awake_since: i64,
}

/// The due times to fire now, oldest first; all after `cursor` and not after `now`.
pub fn due(when: &When, catch_up_latest: bool, c: Clock) -> Vec<i64> {
    let (cursor, now) = (c.cursor, c.now);
    let recent_from = cursor.max(now - GRACE_MS).max(c.awake_since.min(now));
    match when {
        When::Once(at) => {
            let late = *at <= recent_from;
            if *at <= cursor || *at > now || (late && !catch_up_latest) { vec![] } else { vec![*at] }
        }
        When::Cron(cron) => {
            let mut recent = Vec::new();
            let mut t = recent_from;
            while recent.len() < MAX_RECENT {
                match cron.next_after(t) {
                    Some(n) if n <= now => {
                        recent.push(n);
                        t = n;
                    }
                    _ => break,
                }
            }
            if recent.is_empty() && catch_up_latest && recent_from > cursor {
                // Missed entirely: the latest of the missed due times, once.
                return cron.latest_between(cursor, recent_from).into_iter().collect();
            }
            recent
        }
    }
}

/// When this schedule next needs attention after `cursor` (the next due time), if ever.
pub fn next_due(when: &When, cursor: i64) -> Option<i64> {
    match when {
        When::Once(at) => (*at > cursor).then_some(*at),
        When::Cron(cron) => cron.next_after(cursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// 2026-01-05 00:00:00 UTC, a Monday.
    const T0: i64 = 1_767_571_200_000;

    /// A node up long before `now`.
    fn at(cursor: i64, now: i64) -> Clock {
        Clock { cursor, now, awake_since: i64::MIN }
    }

    fn every_minute() -> When {
        When::Cron(Cron::parse("* * * * *", "UTC").unwrap())
    }

    #[test]
    fn a_due_time_fires_once_when_reached() {
        let w = every_minute();
        assert_eq!(due(&w, true, at(T0, T0 + MIN - 1)), Vec::<i64>::new());
        assert_eq!(due(&w, true, at(T0, T0 + MIN)), vec![T0 + MIN]);
        // Handled: the cursor moved past it.
        assert_eq!(due(&w, true, at(T0 + MIN, T0 + MIN + 500)), Vec::<i64>::new());
    }

    #[test]
    fn due_times_within_the_grace_fire_one_by_one() {
        let w = When::Cron(Cron::parse("* * * * * *", "UTC").unwrap());
        assert_eq!(due(&w, true, at(T0, T0 + 3_000)), vec![T0 + 1_000, T0 + 2_000, T0 + 3_000]);
    }

    #[test]
    fn after_an_outage_only_the_latest_missed_time_fires() {
        let w = every_minute();
        // Down for an hour: 60 due times missed; the clock is 30 s past the last one.
        let now = T0 + 60 * MIN + 30_000;
        assert_eq!(due(&w, true, at(T0, now)), vec![T0 + 60 * MIN]);
        assert_eq!(due(&w, false, at(T0, now)), Vec::<i64>::new());
        // Once it fired, the next pass fires nothing more.
        assert_eq!(due(&w, true, at(T0 + 60 * MIN, now)), Vec::<i64>::new());
    }

    #[test]
    fn a_recent_due_time_supersedes_the_missed_ones() {
        let w = every_minute();
        // Missed many, but one is due within the grace: that one fires, alone.
        let now = T0 + 60 * MIN + 2_000;
        assert_eq!(due(&w, true, at(T0, now)), vec![T0 + 60 * MIN]);
    }

    #[test]
    fn a_per_second_schedule_after_a_day_down_fires_once() {
        let w = When::Cron(Cron::parse("* * * * * *", "UTC").unwrap());
        let now = T0 + 24 * 60 * MIN + 10_500;
        let fires = due(&w, true, at(T0, now));
        assert_eq!(fires.len(), 5, "the grace window's due times only: {fires:?}");
        assert!(fires.iter().all(|t| *t > now - GRACE_MS && *t <= now));
    }

    #[test]
    fn a_node_starting_after_an_outage_fires_the_latest_missed_time_only() {
        let w = When::Cron(Cron::parse("* * * * * *", "UTC").unwrap());
        // Everything was down from T0 to T0 + 30 s; this node started at T0 + 30 s.
        let now = T0 + 30_200;
        let c = Clock { cursor: T0, now, awake_since: T0 + 30_000 };
        assert_eq!(due(&w, true, c), vec![T0 + 30_000]);
        assert_eq!(due(&w, false, c), Vec::<i64>::new());
        // From then on, due times fire one by one again.
        let c = Clock { cursor: T0 + 30_000, now: T0 + 32_000, awake_since: T0 + 30_000 };
        assert_eq!(due(&w, true, c), vec![T0 + 31_000, T0 + 32_000]);
    }

    #[test]
    fn one_shots_fire_once_and_follow_the_catch_up_rule_when_late() {
        let t1 = T0 + MIN;
        assert_eq!(due(&When::Once(t1), true, at(T0, t1 - 1)), Vec::<i64>::new());
        assert_eq!(due(&When::Once(t1), false, at(T0, t1 + 1_000)), vec![t1]);
        assert_eq!(due(&When::Once(t1), true, at(t1, t1 + 1_000)), Vec::<i64>::new());
        let much_later = t1 + 60 * MIN;
        assert_eq!(due(&When::Once(t1), true, at(T0, much_later)), vec![t1]);
        assert_eq!(due(&When::Once(t1), false, at(T0, much_later)), Vec::<i64>::new());
        assert_eq!(next_due(&When::Once(t1), T0), Some(t1));
        assert_eq!(next_due(&When::Once(t1), t1), None);
    }
}
