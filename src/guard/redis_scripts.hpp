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
// ARGV: now_ms day month lease_end_ms settlements admissions sums limit-sets, then
//   the sums (2 each): field change: what the batch's settlements change in the key's hash
//       if every hold they settle is still held ("s|<period>" +cost, "h|<period>" -held cost,
//       "t|<second of admission>" +tokens -held tokens), added up by the gateway
//   the limit sets (6 each): daily monthly rpm tpm loop_max loop_window_ms (an absent
//       limit is ""; an admission names its set by its index, from 1)
//   the settlements: all their holds, then all their costs, then all their tokens (each
//       hold its lease member, "id cost tokens second day month", as admitted)
//   the admissions (5 each): hold cost tokens limit-set loop_key (its index in KEYS; 0: no
//       loop guard), the hold built by the gateway (Lua's string work is the dearest part)
//   (amounts in nano-dollars)
// The settlements go first (what they free counts for the admissions after them), then each
// admission in turn, exactly as one script each would: checked against what the ones before
// it held. A settlement charges once: one whose hold is no longer held (a retried batch, or a
// hold that lapsed) is taken out of the sums again, and charged only if it lapsed.
// Returns, per admission, {verdict, a, b, requests, oldest request second, tokens, oldest
// token second} one after the other: "ok"; "d"/"m" with spent and held; "rpm"/"tpm" with
// seconds until below the limit; "loop" with the times sent and when it frees (ms);
// "revoked" when the key was revoked (by any replica: revoked_field). Oldest seconds are -1
// when empty. The key's hash is read once (HMGET) and written once (HSET) per batch, the
// lease read once (ZMSCORE) and written twice (ZREM, ZADD); the numbers stay numbers in Lua
// from the read to the write.
constexpr const char* batch_lua = R"lua(
local st, lease, lapsed = KEYS[1], KEYS[2], KEYS[3]
local now_ms = tonumber(ARGV[1])
local now = math.floor(now_ms / 1000)
local day, month, lease_end = ARGV[2], ARGV[3], ARGV[4]
local ns, na, nd, nl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local d0 = 8
local l0 = d0 + 2 * nd
local s0 = l0 + 6 * nl
local a0 = s0 + 3 * ns

local r_now, t_now = 'r|' .. now, 't|' .. now
local s_day, s_month, h_day, h_month = 's|' .. day, 's|' .. month, 'h|' .. day, 'h|' .. month
local names = {r_now, t_now, s_day, s_month, h_day, h_month, 'revoked', 'lz'}
local sums, fields = {}, {}
for i = 1, nd do
  local name = ARGV[d0 + 2 * i - 1]
  names[#names + 1], fields[i], sums[name] = name, name, tonumber(ARGV[d0 + 2 * i])
end
local w, f = state(st, now, unpack(names))
-- The fields' values as the batch goes (false: absent), read once; the ones changed, in order.
local val, order = {}, {}
for i, name in ipairs(names) do
  if val[name] == nil then val[name] = f[5 + i] or false end
end
-- (a second the slide just dropped is gone, whatever the read before it said)
for i = 1, nd do
  local name = fields[i]
  if string.sub(name, 1, 1) == 't' and (tonumber(string.sub(name, 3)) or 0) <= w.c then
    val[name] = false
  end
end
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

-- The settlements: the sums hold as they are while every hold is still held; one that is
-- not (settled before, or lapsed: then no longer held, but charged now) is taken out of them.
local function add(name, x)
  if sums[name] == nil then
    fields[#fields + 1], sums[name] = name, 0
  end
  sums[name] = sums[name] + x
end
if ns > 0 then
  local live = redis.call('ZMSCORE', lease, unpack(ARGV, s0 + 1, s0 + ns))
  for i = 1, ns do
    if not live[i] then
      local id, c, t, sec, d, m = string.match(ARGV[s0 + i], '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
      if id then
        local cost, tokens = tonumber(ARGV[s0 + ns + i]), tonumber(ARGV[s0 + 2 * ns + i])
        add('h|' .. d, tonumber(c))
        add('h|' .. m, tonumber(c))
        add('t|' .. sec, tonumber(t) - tokens)
        if redis.call('HDEL', lapsed, id) ~= 1 then
          add('s|' .. d, -cost)
          add('s|' .. m, -cost)
        end
      end
    end
  end
  redis.call('ZREM', lease, unpack(ARGV, s0 + 1, s0 + ns))
end
for _, name in ipairs(fields) do
  local x = sums[name]
  local kind = string.sub(name, 1, 1)
  if x == 0 then -- nothing
  elseif kind == 't' then -- the estimate counted at admission becomes the actual tokens,
    local before = get(name) -- if its second is live
    if before then
      before = tonumber(before)
      local after = math.max(before + x, 0)
      w.tt = math.max(w.tt + after - before, 0)
      set(name, after)
    end
  elseif kind == 'h' then
    set(name, math.max(num(get(name)) + x, 0))
  else
    set(name, num(get(name)) + x)
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

local sets = {}
for i = 1, nl do
  local b = l0 + 6 * (i - 1)
  sets[i] = {tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]),
             tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])}
end
local out, zadd = {}, {}
local revoked = get('revoked')
local sd, sm, hd, hm = num(get(s_day)), num(get(s_month)), num(get(h_day)), num(get(h_month))
local held, counted, counted_tokens = false, 0, 0
for i = 0, na - 1 do
  local b = a0 + 5 * i
  local lim = sets[tonumber(ARGV[b + 4])]
  local daily, monthly, rpm, tpm = lim[1], lim[2], lim[3], lim[4]
  local loopk = KEYS[tonumber(ARGV[b + 5])]
  local loop_max, loop_window = loopk and lim[5], lim[6] or 60000
  local verdict, va, vb = 'ok', 0, 0
  if revoked then
    verdict = 'revoked'
  elseif daily and sd + hd >= daily then
    verdict, va, vb = 'd', sd, hd
  elseif monthly and sm + hm >= monthly then
    verdict, va, vb = 'm', sm, hm
  elseif rpm and w.rt >= rpm then
    verdict, va = 'rpm', until_below('r', w.rt, rpm)
  elseif tpm and w.tt >= tpm then
    verdict, va = 'tpm', until_below('t', w.tt, tpm)
  elseif loop_max then
    redis.call('ZREMRANGEBYSCORE', loopk, '-inf', now_ms - loop_window)
    local n = redis.call('ZCARD', loopk)
    if n >= loop_max then
      local frees = now_ms + loop_window
      if loop_max > 0 then
        local e = redis.call('ZRANGE', loopk, n - loop_max, n - loop_max, 'WITHSCORES')
        frees = tonumber(e[2]) + loop_window
      end
      verdict, va, vb = 'loop', n + 1, frees
    end
  end
  if verdict == 'ok' then
    local hold, cost, tokens = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    w.rt, w.tt = w.rt + 1, w.tt + tokens
    counted, counted_tokens = counted + 1, counted_tokens + tokens
    if w.ro < 0 then w.ro = now end
    if w.to < 0 and tokens > 0 then w.to = now end
    if cost > 0 then
      hd, hm, held = hd + cost, hm + cost, true
    end
    zadd[#zadd + 1], zadd[#zadd + 2] = lease_end, hold
    if loop_max then
      redis.call('ZADD', loopk, now_ms, hold)
      redis.call('ZREMRANGEBYRANK', loopk, 0, -(loop_max + 1))
      redis.call('PEXPIRE', loopk, loop_window)
    end
  end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = verdict, va, vb, w.rt
  out[n + 5], out[n + 6], out[n + 7] = w.ro, w.tt, w.to
end
if held then
  set(h_day, hd)
  set(h_month, hm)
end
if counted > 0 then
  if now > w.c then
    set(r_now, num(get(r_now)) + counted)
    set(t_now, num(get(t_now)) + counted_tokens)
  else -- (a clock more than a minute behind another replica's: count it as the oldest second)
    redis.call('HINCRBY', st, 'r|' .. (w.c + 1), counted)
    redis.call('HINCRBY', st, 't|' .. (w.c + 1), counted_tokens)
  end
end

local rec = {'rt', w.rt, 'tt', w.tt, 'ro', w.ro, 'to', w.to}
for _, name in ipairs(order) do
  if val[name] then
    rec[#rec + 1], rec[#rec + 2] = name, val[name]
  end
end
redis.call('HSET', st, unpack(rec))
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
