//! The Lua scripts behind every state change of the Redis queue. Each runs atomically, which
//! is what makes the guarantees hold across workers: the completion marker is set together
//! with the acknowledgement, a retry or dead letter replaces the entry in one step, and a
//! due retry moves from the delay set to the stream exactly once however many workers
//! promote at the same moment.
//!
//! Keys of a queue on stream `S`: `S` (the stream; entries are deleted once acknowledged, so
//! its length is the backlog), `S:retry` (sorted set of retry documents by due time in Unix
//! ms), `S:dead` (dead-letter stream), `S:completed` (log of completions), `S:done:<key>`
//! (completion markers). Times come from Redis (`TIME`), not from the workers' clocks.

use redis::Script;

/// `KEYS[1]` stream; `ARGV[1]` backlog limit, `ARGV[2..]` documents.
/// Returns `{"ok", id…}` or `{"full", backlog}`; all documents or none are added.
const ENQUEUE: &str = r"
local backlog = redis.call('XLEN', KEYS[1])
if backlog + #ARGV - 1 > tonumber(ARGV[1]) then
  return {'full', tostring(backlog)}
end
local out = {'ok'}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'job', ARGV[i])
end
return out
";

/// `KEYS[1]` retry set, `KEYS[2]` stream; `ARGV[1]` most to move. Returns how many moved.
const PROMOTE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now),
  'LIMIT', 0, tonumber(ARGV[1]))
for _, doc in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', doc)
  redis.call('ZREM', KEYS[1], doc)
end
return #due
";

/// `KEYS[1]` stream; `ARGV[1]` group, `ARGV[2]` consumer, `ARGV[3]` min idle ms, `ARGV[4]`
/// cursor, `ARGV[5]` count. `XAUTOCLAIM` plus each claimed entry's delivery count (which
/// `XAUTOCLAIM` does not report): `{next cursor, id, document, deliveries, …}`.
const CLAIM: &str = r"
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local out = {r[1]}
for _, entry in ipairs(r[2]) do
  if type(entry) == 'table' then
    local id, fields, doc = entry[1], entry[2], ''
    if type(fields) == 'table' then
      for i = 1, #fields, 2 do
        if fields[i] == 'job' then doc = fields[i + 1] end
      end
    end
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local count = 1
    if p[1] then count = p[1][4] end
    out[#out + 1] = id
    out[#out + 1] = doc
    out[#out + 1] = tostring(count)
  end
end
return out
";

/// `KEYS[1]` stream, `KEYS[2]` marker, `KEYS[3]` completion log; `ARGV[1]` group, `ARGV[2]`
/// entry id, `ARGV[3]` marker value, `ARGV[4]` marker TTL s, `ARGV[5]` log maxlen (0 = no
/// log), `ARGV[6]` key, `ARGV[7]` job id, `ARGV[8]` consumer, `ARGV[9]` deliveries.
/// Sets the marker only if absent and acknowledges either way; 1 if this call set it.
const COMPLETE: &str = r"
local won = redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if not won then return 0 end
if tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'key', ARGV[6], 'id', ARGV[7],
    'consumer', ARGV[8], 'deliveries', ARGV[9])
end
return 1
";

/// `KEYS[1]` stream, `KEYS[2]` marker (empty: none), `KEYS[3]` target (retry set, dead
/// stream, or the stream); `ARGV[1]` group, `ARGV[2]` entry id, `ARGV[3]` consumer,
/// `ARGV[4]` action (`retry`, `dead`, `requeue`, `ack`), `ARGV[5]` document, `ARGV[6]`
/// delay ms (retry) or maxlen (dead), `ARGV[7]` reason, `ARGV[8]` deliveries.
/// Only the entry's current owner may end it this way: another worker that claimed it
/// decides (`superseded`). If the key completed meanwhile, the entry is only acknowledged
/// (`completed`). Otherwise `done`.
const SETTLE: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if p[1] == nil or p[1][2] ~= ARGV[3] then return 'superseded' end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return 'completed' end
local action = ARGV[4]
if action == 'retry' then
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6])
  redis.call('ZADD', KEYS[3], string.format('%.0f', due), ARGV[5])
elseif action == 'dead' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'job', ARGV[5], 'reason', ARGV[7],
    'deliveries', ARGV[8], 'consumer', ARGV[3])
elseif action == 'requeue' then
  redis.call('XADD', KEYS[3], '*', 'job', ARGV[5])
end
return 'done'
";

/// `KEYS[1]` stream; `ARGV[1]` group, `ARGV[2]` consumer, `ARGV[3..]` entry ids. Resets
/// the idle time of those still owned by the consumer (`XCLAIM … JUSTID` does not count a
/// delivery); returns how many.
const TOUCH: &str = r"
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
";

/// `KEYS[1]` stream; `ARGV[1]` group, `ARGV[2]` min idle ms, `ARGV[3]` own consumer name.
/// Deletes consumers (other than this one) with nothing pending that were idle longer than
/// the minimum: worker names are unique per process, so a restarted fleet would otherwise
/// leave one per restart behind. Nothing is lost, as only consumers without pending entries
/// go. Returns how many.
const PRUNE: &str = r"
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0
      and tonumber(f['idle']) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
";

/// The scripts, hashed once (invoked with `EVALSHA`, falling back to `EVAL` after a Redis
/// restart emptied the script cache).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) enqueue: Script,
    pub(super) promote: Script,
    pub(super) claim: Script,
    pub(super) complete: Script,
    pub(super) settle: Script,
    pub(super) touch: Script,
    pub(super) prune: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            enqueue: Script::new(ENQUEUE),
            promote: Script::new(PROMOTE),
            claim: Script::new(CLAIM),
            complete: Script::new(COMPLETE),
            settle: Script::new(SETTLE),
            touch: Script::new(TOUCH),
            prune: Script::new(PRUNE),
        }
    }
}
