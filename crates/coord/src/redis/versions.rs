//! Versions: one integer key each, read and bumped by Lua scripts. A missing key (never set, or
//! lost with Redis's data) starts at a random value in the same script that reads or bumps it:
//! a version lost with the data does not come back at a value some node still remembers.

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Script};

use super::Keys;

/// KEYS[1] = version; ARGV[1] = a random start. The version, as a string (Lua numbers are
/// doubles: an integer reply is exact only below 2^53, which the start keeps to).
pub(super) const READ: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  return v
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// KEYS[1] = version; ARGV[1] = a random start.
pub(super) const BUMP: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('INCR', KEYS[1])
return 1
";

/// A start below 2^48: a bump a millisecond for thousands of years stays below 2^53.
fn start() -> u64 {
    rand::random::<u64>() >> 16
}

pub(super) async fn read(c: &mut impl ConnectionLike, keys: &Keys, script: &Script, name: &str) -> RedisResult<u64> {
    script.key(keys.version(name)).arg(start()).invoke_async(c).await
}

pub(super) async fn bump(c: &mut impl ConnectionLike, keys: &Keys, script: &Script, name: &str) -> RedisResult<()> {
    script.key(keys.version(name)).arg(start()).invoke_async::<i64>(c).await.map(drop)
}
