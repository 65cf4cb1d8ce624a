//! Locks: a key holding a random token, taken with `SET NX PX` and expiring on its own. Extending
//! and releasing go through Lua scripts that compare the token first, so a process whose lock
//! expired (and was taken by another) can never extend or release the new holder's lock.

use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Script};

use super::{Keys, ttl_millis};
use crate::Lock;

/// KEYS[1] = lock; ARGV[1] = token, ARGV[2] = time to live in ms. 1 when extended.
pub(super) const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// KEYS[1] = lock; ARGV[1] = token. 1 when released.
pub(super) const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// 128 random bits: unguessable, and unique among every holder a lock will ever have.
fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(super) async fn try_lock(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    name: &str,
    ttl: Duration,
) -> RedisResult<Option<Lock>> {
    let token = token();
    let taken: Option<String> = ::redis::cmd("SET")
        .arg(keys.lock(name))
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(ttl_millis(ttl))
        .query_async(c)
        .await?;
    Ok(taken.map(|_| Lock { name: name.to_owned(), token }))
}

pub(super) async fn extend(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    script: &Script,
    lock: &Lock,
    ttl: Duration,
) -> RedisResult<bool> {
    let extended: i64 = script.key(keys.lock(&lock.name)).arg(&lock.token).arg(ttl_millis(ttl)).invoke_async(c).await?;
    Ok(extended == 1)
}

pub(super) async fn unlock(c: &mut impl ConnectionLike, keys: &Keys, script: &Script, lock: &Lock) -> RedisResult<()> {
    script.key(keys.lock(&lock.name)).arg(&lock.token).invoke_async::<i64>(c).await.map(drop)
}
