//! Counters: one integer key per counter, whose time to live is its window. Hitting is one Lua
//! script (INCR, then PEXPIRE if the key has no time to live yet, then PTTL), so two nodes hitting
//! the same key at once both count and exactly one of them opens the window.

use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Script};

use super::{Keys, ttl_millis};
use crate::Count;

/// KEYS[1] = counter; ARGV[1] = window in ms. `{count, ms until the window ends}`. A key without
/// a time to live (`PTTL` -1: just created, or left behind by anything else) gets the window, so
/// a counter can never live forever.
pub(super) const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

/// KEYS[1] = counter. `{count, ms until the window ends}`, `{0, 0}` when there is none. In one
/// script so the key cannot expire between the two reads.
pub(super) const PEEK: &str = r"
local n = redis.call('GET', KEYS[1])
if not n then
  return {0, 0}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = 0
end
return {tonumber(n), ttl}
";

fn count((n, ttl_ms): (i64, i64)) -> Count {
    Count { n: n.max(0) as u64, resets_in: Duration::from_millis(ttl_ms.max(0) as u64) }
}

pub(super) async fn hit(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    script: &Script,
    key: &str,
    window: Duration,
) -> RedisResult<Count> {
    script.key(keys.counter(key)).arg(ttl_millis(window)).invoke_async(c).await.map(count)
}

pub(super) async fn peek(c: &mut impl ConnectionLike, keys: &Keys, script: &Script, key: &str) -> RedisResult<Count> {
    script.key(keys.counter(key)).invoke_async(c).await.map(count)
}

pub(super) async fn clear(c: &mut impl ConnectionLike, keys: &Keys, key: &str) -> RedisResult<()> {
    ::redis::cmd("DEL").arg(keys.counter(key)).query_async::<i64>(c).await.map(drop)
}
