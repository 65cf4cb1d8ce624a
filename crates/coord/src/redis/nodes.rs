//! Node heartbeats: one key per node holding its `NodeInfo` JSON and expiring with the heartbeat,
//! plus a set of node ids to list them without `SCAN`. The check for a second process with the
//! same node id and the write happen in one Lua script, so two such processes cannot both win.

use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Script};

use super::{Keys, ttl_millis};
use crate::{Beat, NodeInfo};

/// KEYS[1] = node record, KEYS[2] = node index; ARGV[1] = record JSON, ARGV[2] = instance,
/// ARGV[3] = time to live in ms, ARGV[4] = node id. Nil when recorded, else the live record's
/// instance. A record that does not decode is overwritten: it cannot name a rival.
pub(super) const BEAT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, rec = pcall(cjson.decode, current)
  if ok and type(rec) == 'table' and type(rec.instance) == 'string' and rec.instance ~= ARGV[2] then
    return rec.instance
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return false
";

/// KEYS[1] = node record, KEYS[2] = node index; ARGV[1] = instance, ARGV[2] = node id. The id
/// leaves the index too unless another instance holds the record now.
pub(super) const LEAVE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, rec = pcall(cjson.decode, current)
  if not (ok and type(rec) == 'table' and rec.instance == ARGV[1]) then
    return 0
  end
  redis.call('DEL', KEYS[1])
end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
";

/// KEYS[1] = node index; ARGV[1] = record key prefix. The records still alive; ids whose record
/// expired leave the index, in the same atomic step so a node beating meanwhile is not lost.
pub(super) const LIVE: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then
    out[#out + 1] = v
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
";

pub(super) async fn beat(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    script: &Script,
    node: &NodeInfo,
    ttl: Duration,
) -> RedisResult<Beat> {
    let json = serde_json::to_string(node).map_err(|e| {
        ::redis::RedisError::from((::redis::ErrorKind::Client, "cannot encode the node record", e.to_string()))
    })?;
    let rival: Option<String> = script
        .key(keys.node(&node.id))
        .key(&keys.nodes)
        .arg(json)
        .arg(&node.instance)
        .arg(ttl_millis(ttl))
        .arg(&node.id)
        .invoke_async(c)
        .await?;
    Ok(match rival {
        None => Beat::Recorded,
        Some(other_instance) => Beat::Duplicate { other_instance },
    })
}

pub(super) async fn leave(
    c: &mut impl ConnectionLike,
    keys: &Keys,
    script: &Script,
    node_id: &str,
    instance: &str,
) -> RedisResult<()> {
    script.key(keys.node(node_id)).key(&keys.nodes).arg(instance).arg(node_id).invoke_async::<i64>(c).await.map(drop)
}

pub(super) async fn live(c: &mut impl ConnectionLike, keys: &Keys, script: &Script) -> RedisResult<Vec<NodeInfo>> {
    let records: Vec<String> = script.key(&keys.nodes).arg(&keys.node_prefix).invoke_async(c).await?;
    let mut nodes: Vec<NodeInfo> = records
        .iter()
        .filter_map(|r| match serde_json::from_str(r) {
            Ok(n) => Some(n),
            Err(e) => {
                // Another version may have written it; listing the others is still useful.
                tracing::warn!(error = %e, "skipping a node record that does not decode");
                None
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(nodes)
}
