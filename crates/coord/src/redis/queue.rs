//! The ready queue as one sorted set: members are task ids in decimal, and the score packs the
//! placement order (priority descending, then task id ascending) into one number, so that Redis
//! sorts it and a page after a given entry is one `ZRANGEBYSCORE` with an exclusive bound.
//!
//! Score = `(MAX_PRIORITY - priority) * 2^41 + task_id`. Priorities are clamped into
//! `-MAX_PRIORITY..=MAX_PRIORITY` (2047) and task ids into `0..2^41` (2.2 trillion), so scores stay
//! below `4095 * 2^41 < 2^53` and are exact as the `f64` Redis keeps. Task ids beyond that bound
//! share the last score and fall back to Redis' tie order (by member, as strings), which only
//! affects placement order; the member keeps the true id.

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Script};

use super::Keys;
use crate::{MAX_PRIORITY, Queued, clamp_priority};

/// How many task ids fit below one priority step.
const TASK_SPAN: i64 = 1 << 41;

/// Tasks per script call: Lua's `unpack` fails beyond a few thousand values.
const CHUNK: usize = 1000;

/// Adds the tasks that are not queued yet (`NX`: a present task keeps its score) and, when that
/// added any, publishes a wake-up in the same atomic step.
/// KEYS[1] = queue; ARGV[1] = wake-up channel; ARGV[2..] = score, member pairs.
pub(super) const ENQUEUE: &str = r"
local added = redis.call('ZADD', KEYS[1], 'NX', unpack(ARGV, 2))
if added > 0 then
  redis.call('PUBLISH', ARGV[1], '')
end
return added
";

pub(super) fn score(q: &Queued) -> i64 {
    i64::from(MAX_PRIORITY - clamp_priority(q.priority)) * TASK_SPAN + q.task_id.clamp(0, TASK_SPAN - 1)
}

/// The entry a member and its score stand for. The score came back through an `f64`, which is
/// exact below 2^53.
fn entry(member: &str, score: f64) -> Option<Queued> {
    let task_id = member.parse().ok()?;
    let steps = (score as i64).div_euclid(TASK_SPAN);
    let priority = MAX_PRIORITY - i32::try_from(steps).ok()?;
    Some(Queued { task_id, priority })
}

pub(super) async fn enqueue(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    script: &Script,
    tasks: &[Queued],
) -> RedisResult<()> {
    for chunk in tasks.chunks(CHUNK) {
        let mut call = script.key(&keys.queue);
        call.arg(&keys.work);
        for t in chunk {
            call.arg(score(t)).arg(t.task_id);
        }
        call.invoke_async::<i64>(c).await?;
    }
    Ok(())
}

/// One `ZREM` per task, pipelined (one round trip per chunk): each answers whether this call
/// removed its task, and Redis runs every command alone, so of two callers removing the same
/// task only one hears 1.
pub(super) async fn dequeue(c: &mut impl ConnectionLike, keys: &Keys, task_ids: &[i64]) -> RedisResult<Vec<i64>> {
    let mut removed = Vec::new();
    for chunk in task_ids.chunks(CHUNK) {
        let mut pipe = ::redis::pipe();
        for id in chunk {
            pipe.cmd("ZREM").arg(&keys.queue).arg(*id);
        }
        let answers: Vec<i64> = pipe.query_async(c).await?;
        removed.extend(chunk.iter().zip(answers).filter(|(_, n)| *n == 1).map(|(id, _)| *id));
    }
    Ok(removed)
}

pub(super) async fn page(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    after: Option<Queued>,
    limit: usize,
) -> RedisResult<Vec<Queued>> {
    let min = match after {
        Some(a) => format!("({}", score(&a)),
        None => "-inf".to_owned(),
    };
    let rows: Vec<(String, f64)> = ::redis::cmd("ZRANGEBYSCORE")
        .arg(&keys.queue)
        .arg(min)
        .arg("+inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        .arg(limit)
        .query_async(c)
        .await?;
    // A member that is not a task id was not written by this code: skip it rather than fail.
    Ok(rows.iter().filter_map(|(member, score)| entry(member, *score)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(q: Queued) -> Queued {
        entry(&q.task_id.to_string(), score(&q) as f64).unwrap()
    }

    #[test]
    fn scores_round_trip_at_the_bounds() {
        for q in [
            Queued { task_id: 0, priority: 0 },
            Queued { task_id: 1, priority: MAX_PRIORITY },
            Queued { task_id: TASK_SPAN - 1, priority: -MAX_PRIORITY },
            Queued { task_id: 123_456_789, priority: -1000 },
        ] {
            assert_eq!(round_trip(q), q);
        }
        assert!((score(&Queued { task_id: TASK_SPAN - 1, priority: -MAX_PRIORITY }) as f64) < 2f64.powi(53));
    }

    #[test]
    fn out_of_range_priorities_are_clamped() {
        assert_eq!(round_trip(Queued { task_id: 5, priority: i32::MAX }).priority, MAX_PRIORITY);
        assert_eq!(round_trip(Queued { task_id: 5, priority: i32::MIN }).priority, -MAX_PRIORITY);
    }

    #[test]
    fn scores_sort_in_placement_order() {
        let order = [
            Queued { task_id: 9, priority: 5 },
            Queued { task_id: 1, priority: 0 },
            Queued { task_id: 2, priority: 0 },
            Queued { task_id: TASK_SPAN - 1, priority: 0 },
            Queued { task_id: 0, priority: -1 },
        ];
        for w in order.windows(2) {
            assert!(score(&w[0]) < score(&w[1]), "{:?} before {:?}", w[0], w[1]);
        }
    }
}
