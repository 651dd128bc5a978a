#pragma once
// The shared ledger's server-side scripts (Lua, run by Redis with EVALSHA).

namespace michi::guard::scripts {

// One key's state is one hash, "michi:{<key id>}" (the braces keep the names of a key on one
// cluster slot), so that an admission or a settlement reads it with one HMGET and writes it
// with one HSET (each call a script makes costs Redis about a microsecond of its own). Its
// fields, amounts in integer nano-dollars (exact; no drift however many holds come and go):
//   s|<period>  settled spend               ("s|d:2026-12-05", "s|m:2026-12")
//   h|<period>  held by requests in flight
//   r|<second>, t|<second>  requests / tokens counted in that epoch second
//   rt, tt      their totals over the live seconds (the last 60); ro, to the oldest live
//               second with a count (-1: none); c the second up to which expired seconds
//               were dropped: an admission costs O(1), not a walk of 60 buckets
//   revoked     present once the key is revoked: admissions are refused from then on
//   lz          the second the lease was last looked through for holds that lapsed
// Beside it: ":lease" (zset of the holds in flight by the end of their lease, ms; each member is
// the hold itself, "id cost tokens second day month", which the gateway knows again when it
// settles: no field per hold in the key's hash, whose small-hash searches grow with its
// fields), ":lapsed" (the holds
// whose lease ended unsettled; the hash expires a day after the last lapse) and
// ":loop:<fingerprint>" (zset of the times, ms, the same body was sent).
constexpr const char* prelude = R"lua(
local function num(v) return tonumber(v) or 0 end
-- Drops the seconds that left the window (at most a minute of them; a state idle longer is
-- counted again from what is left) and finds the oldest live seconds again if they left.
local function slide(st, c, edge, now, w)
  if c ~= nil and edge - c <= 60 then
    for s = c + 1, edge do
      local b = redis.call('HMGET', st, 'r|' .. s, 't|' .. s)
      if b[1] or b[2] then
        w.rt, w.tt = w.rt - num(b[1]), w.tt - num(b[2])
        redis.call('HDEL', st, 'r|' .. s, 't|' .. s)
      end
    end
    local need_r, need_t = w.ro >= 0 and w.ro <= edge, w.to >= 0 and w.to <= edge
    if need_r then w.ro = -1 end
    if need_t then w.to = -1 end
    for s = edge + 1, now do
      if not need_r and not need_t then break end
      local b = redis.call('HMGET', st, 'r|' .. s, 't|' .. s)
      if need_r and b[1] then w.ro, need_r = s, false end
      if need_t and num(b[2]) > 0 then w.to, need_t = s, false end
    end
  elseif c ~= nil then
    w.rt, w.tt, w.ro, w.to = 0, 0, -1, -1
    local all = redis.call('HGETALL', st)
    for i = 1, #all, 2 do
      local kind, sec = string.match(all[i], '^([rt])|(%d+)$')
      local s, n = tonumber(sec), tonumber(all[i + 1])
      if s and s <= edge then
        redis.call('HDEL', st, all[i])
      elseif kind == 'r' then
        w.rt = w.rt + n
        if w.ro < 0 or s < w.ro then w.ro = s end
      elseif kind == 't' then
        w.tt = w.tt + n
        if n > 0 and (w.to < 0 or s < w.to) then w.to = s end
      end
    end
  end
  if w.rt < 0 then w.rt = 0 end
  if w.tt < 0 then w.tt = 0 end
end
-- The key's windows at second now (slid and written back when the second moved on), and the
-- values of the extra fields asked for, from f[6] on.
local function state(st, now, ...)
  local f = redis.call('HMGET', st, 'rt', 'tt', 'c', 'ro', 'to', ...)
  local w = {rt = num(f[1]), tt = num(f[2]), ro = tonumber(f[4]) or -1, to = tonumber(f[5]) or -1,
             c = tonumber(f[3])}
  local edge = now - 60
  if w.c == nil or w.c < edge then
    slide(st, w.c, edge, now, w)
    w.c = edge
    redis.call('HSET', st, 'rt', w.rt, 'tt', w.tt, 'c', edge, 'ro', w.ro, 'to', w.to)
  end
  return w, f
end
)lua";

// KEYS: state lease lapsed, then the loop-guard sets the admissions name
// ARGV: now_ms day month lease_end_ms settlements admissions, then
//   per settlement (8): hold_id cost tokens held_cost held_tokens day month second-of-admission
//       (the hold as admitted, which the gateway still knows)
//   per admission (11): hold_id record cost tokens daily monthly rpm tpm loop_max
//       loop_window_ms loop_key (its index in KEYS; 0: no loop guard)
//   (amounts in nano-dollars; an absent limit is ""; the record, "cost tokens second day
//   month", is built by the gateway: Lua's string work is the dearest part of a script)
// The settlements go first (what they free counts for the admissions after them), then each
// admission in turn, exactly as one script each would: checked against what the ones before
// it held. A settlement charges once: a hold settled before (a retried batch) is skipped.
// Returns, per admission, {verdict, a, b, requests, oldest request second, tokens, oldest
// token second} one after the other: "ok"; "d"/"m" with spent and held; "rpm"/"tpm" with
// seconds until below the limit; "loop" with the times sent and when it frees (ms);
// "revoked" when the key was revoked (by any replica: revoked_field). Oldest seconds are -1
// when empty. The key's hash is read once (HMGET) and written once (HSET) per batch.
constexpr const char* batch_lua = R"lua(
local st, lease, lapsed = KEYS[1], KEYS[2], KEYS[3]
local now_ms = tonumber(ARGV[1])
local now = math.floor(now_ms / 1000)
local day, month, lease_end = ARGV[2], ARGV[3], ARGV[4]
local ns, na = tonumber(ARGV[5]), tonumber(ARGV[6])
local s0, a0 = 6, 6 + 9 * ns

local r_now, t_now = 'r|' .. now, 't|' .. now
local s_day, s_month, h_day, h_month = 's|' .. day, 's|' .. month, 'h|' .. day, 'h|' .. month
local names = {r_now, t_now, s_day, s_month, h_day, h_month, 'revoked', 'lz'}
local w, f = state(st, now, unpack(names))
-- The fields' values as the batch goes (false: absent), read once; the ones changed, in order.
local val, order = {}, {}
for i, name in ipairs(names) do val[name] = f[5 + i] or false end
local function get(name)
  local v = val[name]
  if v == nil then
    v = redis.call('HGET', st, name) or false
    val[name] = v
  end
  return v
end
local function set(name, v)
  if not order[name] then
    order[#order + 1] = name
    order[name] = true
  end
  val[name] = v
end

-- The holds whose lease ended unsettled (looked for once a second, in the second's first
-- batch): no longer held, kept in the lapsed hash for a late settlement.
if tonumber(val['lz']) ~= now then
  local expired = redis.call('ZRANGEBYSCORE', lease, '-inf', now_ms, 'LIMIT', 0, 100)
  for _, hold in ipairs(expired) do
    local id, c, _, _, d, m = string.match(hold, '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    local v = hold
    if not id then -- (a hold of an earlier version: its record in the key's hash)
      id, v = hold, redis.call('HGET', st, 'x|' .. hold)
      if v then
        c, _, _, d, m = string.match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
        redis.call('HDEL', st, 'x|' .. hold)
      end
    end
    if v and c then
      set('h|' .. d, math.max(num(get('h|' .. d)) - tonumber(c), 0))
      set('h|' .. m, math.max(num(get('h|' .. m)) - tonumber(c), 0))
      redis.call('HSET', lapsed, id, v)
    end
  end
  if #expired > 0 then
    redis.call('ZREM', lease, unpack(expired))
    redis.call('EXPIRE', lapsed, 86400)
  end
  set('lz', now)
end

-- Which of the settled holds are still held (a lapsed one is not; a settled one is gone).
local done, live = {}, {}
if ns > 0 then
  local members = {}
  for i = 0, ns - 1 do members[#members + 1] = ARGV[s0 + 9 * i + 2] end
  live = redis.call('ZMSCORE', lease, unpack(members))
end
for i = 0, ns - 1 do
  local b = s0 + 9 * i
  local id, cost, tokens = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local est, est_tokens = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local sd, sm = 's|' .. ARGV[b + 7], 's|' .. ARGV[b + 8]
  local charge = false
  if live[i + 1] then
    local hd, hm = 'h|' .. ARGV[b + 7], 'h|' .. ARGV[b + 8]
    set(hd, math.max(num(get(hd)) - est, 0))
    set(hm, math.max(num(get(hm)) - est, 0))
    -- The estimate counted at admission becomes the actual tokens, if its second is live.
    local at = 't|' .. ARGV[b + 9]
    local t_at = get(at)
    if t_at and tokens ~= est_tokens then
      local after = math.max(tonumber(t_at) + tokens - est_tokens, 0)
      w.tt = math.max(w.tt + after - tonumber(t_at), 0)
      set(at, after)
    end
    done[#done + 1] = ARGV[b + 2]
    charge = true
  elseif redis.call('HDEL', lapsed, id) == 1 then
    charge = true
  end
  if charge then
    set(sd, num(get(sd)) + cost)
    set(sm, num(get(sm)) + cost)
  end
end

-- Seconds until the window of kind ('r' or 't') drops below limit (a refusal's retry-after).
local waits = {}
local function until_below(kind, total, limit)
  if limit == 0 then return 60 end
  if waits[kind] then return waits[kind] end
  local all, buckets = redis.call('HGETALL', st), {}
  for i = 1, #all, 2 do
    local k, sec = string.match(all[i], '^([rt])|(%d+)$')
    local s = tonumber(sec)
    if k == kind and s > now - 60 and s <= now then
      buckets[#buckets + 1] = {s, tonumber(all[i + 1])}
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed, wait = 0, 60
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if total - freed < limit then
      wait = math.max(b[1] + 60 - now, 1)
      break
    end
  end
  waits[kind] = wait
  return wait
end

local out, zadd = {}, {}
local revoked = get('revoked')
for i = 0, na - 1 do
  local b = a0 + 11 * i
  local verdict, va, vb = 'ok', '0', '0'
  local daily, monthly = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local rpm, tpm = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8])
  local loop_max, loop_window = tonumber(ARGV[b + 9]), tonumber(ARGV[b + 10])
  local loopk = KEYS[tonumber(ARGV[b + 11])]
  if not loopk then loop_max = nil end
  local sd, sm, hd, hm = num(get(s_day)), num(get(s_month)), num(get(h_day)), num(get(h_month))
  if revoked then
    verdict = 'revoked'
  elseif daily and sd + hd >= daily then
    verdict, va, vb = 'd', tostring(sd), tostring(hd)
  elseif monthly and sm + hm >= monthly then
    verdict, va, vb = 'm', tostring(sm), tostring(hm)
  elseif rpm and w.rt >= rpm then
    verdict, va = 'rpm', tostring(until_below('r', w.rt, rpm))
  elseif tpm and w.tt >= tpm then
    verdict, va = 'tpm', tostring(until_below('t', w.tt, tpm))
  elseif loop_max then
    redis.call('ZREMRANGEBYSCORE', loopk, '-inf', now_ms - loop_window)
    local n = redis.call('ZCARD', loopk)
    if n >= loop_max then
      local frees = now_ms + loop_window
      if loop_max > 0 then
        local e = redis.call('ZRANGE', loopk, n - loop_max, n - loop_max, 'WITHSCORES')
        frees = tonumber(e[2]) + loop_window
      end
      verdict, va, vb = 'loop', tostring(n + 1), tostring(frees)
    end
  end
  if verdict == 'ok' then
    local id, cost, tokens = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    w.rt, w.tt = w.rt + 1, w.tt + tokens
    if now > w.c then
      set(r_now, num(get(r_now)) + 1)
      set(t_now, num(get(t_now)) + tokens)
    else -- (a clock more than a minute behind another replica's: count it as the oldest second)
      redis.call('HINCRBY', st, 'r|' .. (w.c + 1), 1)
      redis.call('HINCRBY', st, 't|' .. (w.c + 1), tokens)
    end
    if w.ro < 0 then w.ro = now end
    if w.to < 0 and tokens > 0 then w.to = now end
    if cost > 0 then
      set(h_day, hd + cost)
      set(h_month, hm + cost)
    end
    zadd[#zadd + 1], zadd[#zadd + 2] = lease_end, ARGV[b + 2]
    if loop_max then
      redis.call('ZADD', loopk, now_ms, id)
      redis.call('ZREMRANGEBYRANK', loopk, 0, -(loop_max + 1))
      redis.call('PEXPIRE', loopk, loop_window)
    end
  end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = verdict, va, vb, w.rt
  out[n + 5], out[n + 6], out[n + 7] = w.ro, w.tt, w.to
end

local rec = {'rt', w.rt, 'tt', w.tt, 'ro', w.ro, 'to', w.to}
for _, name in ipairs(order) do
  if val[name] then
    rec[#rec + 1], rec[#rec + 2] = name, val[name]
  end
end
redis.call('HSET', st, unpack(rec))
if #done > 0 then redis.call('ZREM', lease, unpack(done)) end
if #zadd > 0 then redis.call('ZADD', lease, unpack(zadd)) end
return out
)lua";

// KEYS: state   ARGV: now_ms day month
// Returns {spent today, spent this month, held today, requests, tokens} (last minute), the
// amounts in nano-dollars.
constexpr const char* usage_lua = R"lua(
local w, f = state(KEYS[1], math.floor(tonumber(ARGV[1]) / 1000), 's|' .. ARGV[2],
                   's|' .. ARGV[3], 'h|' .. ARGV[2])
return {num(f[6]), num(f[7]), num(f[8]), w.rt, w.tt}
)lua";

} // namespace michi::guard::scripts
