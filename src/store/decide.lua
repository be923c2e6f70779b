-- tower-quota: one atomic decision over several buckets, each with several
-- windows, on the Redis server's clock (TIME), so that processes with skewed
-- clocks agree. Loaded once, called by hash (EVALSHA); the client reloads it
-- after NOSCRIPT.
--
-- KEYS, per bucket: its meta hash (block, limit overrides, lateness, fixed
-- windows' starts), then one sorted set per window whose members are units
-- and whose scores are departure times in microseconds since the Unix epoch.
--
-- ARGV[1] = op: "acquire" | "depart" | "release" | "add" | "raise" | "block" | "limit" | "late"
-- ARGV[2] = ticket id (members are id..":"..k for k = 1..cost)
-- ARGV[3] = cost
-- ARGV[4] = most wait in microseconds (-1: forever)
-- ARGV[5] = idle expiry slack in milliseconds
-- ARGV[6] = number of buckets, then per bucket:
--   flag (0: charge, 1: holds the ticket, 2: deferred; plus 10 for the
--   request's own account or API-key bucket, always reserved in), window count,
--   then per window: limit, length in microseconds, phase (-1: sliding; for a
--   fixed window, how far into its current window the client's clock is: the
--   call sees its window start at now - phase on Redis's clock, and decides
--   in that start and the one the bucket keeps: see agreed_start), margin in
--   microseconds (the part of the length that is the client's safety margin:
--   a fixed window's boundaries are every length - margin, the server's, and
--   it also counts what left up to margin before its start)
-- After the buckets, op-specific arguments:
--   "add": window index (0-based) of bucket 1, a count of departures, then
--   per departure its units and how far ahead of now it leaves in
--   microseconds (0: it has left); each is added at its own time, capped at
--   the limit on its own (more would count no longer; capped together with
--   another, a departure was lost)
--   "raise": window index (0-based) of bucket 1, units the server counted
--   "block": microseconds from now
--   "limit": window index of bucket 1, new limit
--   "late": window index of bucket 1, microseconds: a response came back that
--   much later than the window's margin allows, so the window holds every
--   unit that much longer until one window from now (meta fields late:<w>
--   and late_until:<w>; a live one only grows)
--
-- Replies, always {code, number, string}: {0, wait_us, deferred_mask} admitted
-- (wait 0) or reserved; {1, wait_us, bucket} would wait too long;
-- {2, limit, bucket} the cost can never fit; {3, 0, ''} done (corrections).
-- With ":counts" after the op, an admission (wait 0, from "acquire" or
-- "depart") appends '|' and what every window counts then, all processes
-- together (reservations ahead included): "c,c,c;c" for buckets 1 and 2. The
-- client keeps its fault policy's share in step with it.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
-- "acquire:counts", "depart:counts": also reply with what every window counts.
local with_counts = string.sub(op, -7) == ':counts'
if with_counts then op = string.sub(op, 1, -8) end
local id = ARGV[2]
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local slack_ms = tonumber(ARGV[5])
local n = tonumber(ARGV[6])

-- Whether this call's starts may move the kept ones (see agreed_start).
local observes = op ~= 'depart' and op ~= 'release'

-- Where fixed window `w` of `bucket` starts on Redis's clock. A call sees its
-- start at `seen` (now - phase): later than the server's start by the call's
-- delay in reaching Redis, since the phase is measured before the call (a
-- delay only ever makes a start look later). Calls delayed differently would
-- place the start differently, and one that placed it later would no longer
-- count a waiter reserved at the start another call saw. So the bucket's meta
-- keeps one start per window (anchor:<w>), its best estimate of the server's,
-- and what holds is:
-- * A start seen earlier than the kept one (by less than a quarter period) is
--   nearer the server's: it is kept at once. That counts more in the current
--   window (what left in its first part still counts) and opens the next
--   window as much earlier, which is right when the server's start is that
--   early. A call that reaches Redis more than three quarters of a period
--   late (one its client gave up on, or any call when the store's timeout is
--   longer than that) looks like such a start: it moves the start less than a
--   quarter period early. So the call that moves it also decides in the start
--   kept before (decided in the moved start alone, such a late call took the
--   first room of a window that had just begun by the moved start, in the
--   server's window that was still full), and calls that see the start as
--   before decide in both (see win.own) until a period of them moves it back.
-- * A start seen later only moves the kept one once every call for a whole
--   period, from the first that saw it later, has seen it later, and then by
--   the least of them (low:<w>, low_since:<w>). A delay alone never moves it
--   later unless every call for a period was delayed more than the call that
--   set it, and then by no more than the least of those extra delays. A
--   genuine later move of the server's boundary is followed at the first call
--   a period after the first that saw it, unless a call meanwhile saw the
--   kept start or an earlier one (a process not yet told of the move holds
--   the kept start where it is). Where calls before the move had already
--   seen the kept start a little later (their delays differ), that small
--   candidate is followed first and the move a period after: within two.
-- * Meanwhile every call also decides in the start it saw itself (win.own): a
--   unit goes only where the windows of both starts have room. A call that
--   sees a moved boundary keeps to it at once, and one delayed past the kept
--   start never takes room that the kept start's window lacks.
-- * A start moved later keeps counting what the earlier one counted: until a
--   period after the furthest departure held then, the window also counts
--   what left up to the move before its start (hold_from:<w>, the earliest
--   start still honoured, and hold_until:<w>; see `widening`), so a unit
--   reserved at an earlier start's boundary still counts in the window it was
--   reserved in, and a waiter whose window has moved decides again when it
--   leaves (`held_fits`).
-- A waiter's departure or release carries the start its request saw when it
-- asked, from before a move maybe: it decides in that start too, but moves
-- no kept start. Every start is kept near the first one seen (moved by
-- differences, never replaced by a `seen` whole periods away), so that they
-- can be compared.
local function agreed_start(bucket, w, win, seen, meta)
  local period = win.period
  local kept, low, since = meta.kept, meta.low, meta.low_since
  win.hold_from, win.hold_until = meta.hold_from, meta.hold_until or 0
  local m = bucket.meta
  if not kept then
    if observes then
      redis.call('HSET', m, 'anchor:' .. w, seen)
      bucket.anchored = true
    end
    return seen, nil
  end
  local after = math.fmod(seen - kept, period)
  if after < 0 then after = after + period end
  local earlier = after > period - math.floor(period / 4)
  if not observes then
    if after == 0 then return kept, nil end
    if earlier then return kept, kept - (period - after) end
    return kept, kept + after
  end
  if earlier then
    local was = kept
    kept = kept - (period - after)
    redis.call('HSET', m, 'anchor:' .. w, kept)
    redis.call('HDEL', m, 'low:' .. w, 'low_since:' .. w)
    bucket.anchored = true
    return kept, was
  end
  if after == 0 then
    if low then
      redis.call('HDEL', m, 'low:' .. w, 'low_since:' .. w)
      bucket.anchored = true
    end
    return kept, nil
  end
  if not low or after < low then low = after end
  since = since or now
  if now - since < period then
    if low ~= meta.low or since ~= meta.low_since then
      redis.call('HSET', m, 'low:' .. w, low, 'low_since:' .. w, since)
      bucket.anchored = true
    end
    return kept, kept + after
  end
  -- Seen later by `low` at least for a period: it moved.
  local furthest = now
  local last = redis.call('ZRANGE', win.key, -1, -1, 'WITHSCORES')
  if last[2] then furthest = math.max(furthest, tonumber(last[2])) end
  local from = kept
  if win.hold_from and win.hold_until > now then from = math.min(from, win.hold_from) end
  kept = kept + low
  win.hold_from = from
  win.hold_until = math.max(win.hold_until, furthest + (kept - from) + period)
  redis.call('HSET', m, 'anchor:' .. w, kept, 'hold_from:' .. w, from,
    'hold_until:' .. w, win.hold_until)
  redis.call('HDEL', m, 'low:' .. w, 'low_since:' .. w)
  -- This call saw it later still: the next candidate starts with it.
  if after > low then
    redis.call('HSET', m, 'low:' .. w, after - low, 'low_since:' .. w, now)
  end
  bucket.anchored = true
  if after > low then return kept, kept + after - low end
  return kept, nil
end

local buckets = {}
local a = 7
local k = 1
for b = 1, n do
  local flag = tonumber(ARGV[a])
  local nw = tonumber(ARGV[a + 1])
  a = a + 2
  local bucket = { flag = flag % 10, own = flag >= 10, meta = KEYS[k], windows = {}, longest = 0 }
  k = k + 1
  for w = 1, nw do
    local win = {
      key = KEYS[k],
      limit = tonumber(ARGV[a]),
      len = tonumber(ARGV[a + 1]),
      anchor = tonumber(ARGV[a + 2]),
      margin = tonumber(ARGV[a + 3]),
    }
    local i = w - 1
    local meta = redis.call('HMGET', bucket.meta, 'limit:' .. i, 'late:' .. i,
      'late_until:' .. i, 'anchor:' .. i, 'low:' .. i, 'low_since:' .. i,
      'hold_from:' .. i, 'hold_until:' .. i)
    if meta[1] then win.limit = tonumber(meta[1]) end
    win.late = tonumber(meta[2] or '0')
    win.late_until = tonumber(meta[3] or '0')
    win.period = win.len
    if win.anchor >= 0 then
      win.period = math.max(1, win.len - win.margin)
      win.anchor, win.own = agreed_start(bucket, i, win, now - win.anchor, {
        kept = tonumber(meta[4]),
        low = tonumber(meta[5]),
        low_since = tonumber(meta[6]),
        hold_from = tonumber(meta[7]),
        hold_until = tonumber(meta[8]),
      })
    end
    if win.len > bucket.longest then bucket.longest = win.len end
    bucket.windows[w] = win
    k = k + 1
    a = a + 4
  end
  buckets[b] = bucket
end

-- Keeps the bucket's keys for its longest window and `horizon_us` from now
-- (with the slack), or longer if they already live longer: a 429's block or
-- a reservation far ahead set a life that a later call must not cut short.
-- (PEXPIRE GT would say it in one call, but needs Redis 7.)
local function touch(bucket, horizon_us)
  local ttl = math.floor((bucket.longest + horizon_us) / 1000) + slack_ms
  local function keep(key)
    local left = redis.call('PTTL', key)
    -- -2: no such key; -1: a key with no expiry yet.
    if left == -1 or (left >= 0 and left < ttl) then redis.call('PEXPIRE', key, ttl) end
  end
  keep(bucket.meta)
  for _, win in ipairs(bucket.windows) do keep(win.key) end
end

-- A meta key that a kept window start created must expire like the others.
for _, bucket in ipairs(buckets) do
  if bucket.anchored then touch(bucket, 0) end
end

-- Where the window containing `at` starts, on the boundaries of `start`.
local function start_in(win, start, at)
  return start + math.floor((at - start) / win.period) * win.period
end

local function start_of(win, at)
  return start_in(win, win.anchor, at)
end

-- A score bound that leaves `at` out. Lua prints a number with 14
-- significant digits and a time in microseconds has 16: written as it is,
-- the bound would be rounded to 100 us. Every time here is a whole number of
-- microseconds (below 2^53, so exact in a double).
local function before(at)
  return '(' .. string.format('%.0f', at)
end

-- How much longer a window holds its units for a departure at `d`: after a
-- slow response ("late"), a sliding window counts each unit that much longer
-- and a fixed one counts a unit that left up to margin + late before its
-- start; after its kept start moved later (see agreed_start), a fixed window
-- also counts what left up to the move before its start.
local function widening(win, d)
  local w = 0
  if d < win.late_until then w = win.late end
  if win.anchor >= 0 and win.hold_from and d < win.hold_until then
    w = w + math.max(0, win.anchor - win.hold_from)
  end
  return w
end

-- The earliest departure at or after now at which `units` fit in `win`, never
-- before the window's latest entry (departures in a window are FIFO).
local function earliest(win, units)
  if win.anchor < 0 then
    -- A widened window still counts what left up to `late` before its start.
    redis.call('ZREMRANGEBYSCORE', win.key, '-inf', now - win.len - widening(win, now))
  else
    -- Kept a window longer than it counts: the start a call saw itself, up
    -- to three quarters of a period after the kept one, still counts it.
    redis.call('ZREMRANGEBYSCORE', win.key, '-inf', before(start_of(win, now) - win.period - win.margin - widening(win, now)))
  end
  local m = redis.call('ZCARD', win.key)
  local d = now
  if m > 0 then
    local last = redis.call('ZRANGE', win.key, -1, -1, 'WITHSCORES')
    d = math.max(d, tonumber(last[2]))
  end
  if win.anchor < 0 then
    -- Units at s count at d while s > d - len.
    if m + units > win.limit then
      local s = redis.call('ZRANGE', win.key, m - win.limit + units - 1, m - win.limit + units - 1, 'WITHSCORES')
      d = math.max(d, tonumber(s[2]) + win.len + widening(win, d))
    end
    return d
  end
  -- In the kept start's windows and, if the call saw another, in its own.
  local starts = { win.anchor, win.own }
  for _ = 1, 10000 do
    local fits = true
    for _, start in ipairs(starts) do
      local s = start_in(win, start, d)
      local c = redis.call('ZCOUNT', win.key, s - win.margin - widening(win, d), before(s + win.period))
      if c + units > win.limit then
        d = s + win.period
        fits = false
        break
      end
    end
    if fits then return d end
  end
  return d
end

-- What every window of every bucket counts at now (see "Replies"), if asked:
-- for a fixed window, the more of what the windows of both starts count (the
-- share decides in the start its process saw, which may hold more).
local function counts()
  if not with_counts then return '' end
  local out = {}
  for b, bucket in ipairs(buckets) do
    local per = {}
    for w, win in ipairs(bucket.windows) do
      local late = widening(win, now)
      if win.anchor < 0 then
        per[w] = redis.call('ZCOUNT', win.key, before(now - win.len - late), '+inf')
      else
        per[w] = 0
        for _, start in ipairs({ win.anchor, win.own }) do
          local from = start_in(win, start, now) - win.margin - late
          per[w] = math.max(per[w], redis.call('ZCOUNT', win.key, from, '+inf'))
        end
      end
    end
    out[b] = table.concat(per, ',')
  end
  return '|' .. table.concat(out, ';')
end

local function bucket_earliest(bucket, units)
  local d = now
  local blocked = redis.call('HGET', bucket.meta, 'block')
  if blocked then d = math.max(d, tonumber(blocked)) end
  for _, win in ipairs(bucket.windows) do
    d = math.max(d, earliest(win, units))
  end
  return d
end

-- Adds `units` members of `ticket` at `at`, in chunks that Lua's stack holds.
local function add(key, units, at, ticket)
  local u = 1
  while u <= units do
    local args = {}
    for v = u, math.min(units, u + 499) do
      args[#args + 1] = at
      args[#args + 1] = ticket .. ':' .. v
    end
    redis.call('ZADD', key, unpack(args))
    u = u + 500
  end
end

local function charge(bucket, at)
  for _, win in ipairs(bucket.windows) do add(win.key, cost, at, id) end
  touch(bucket, at - now)
end

local function release(bucket)
  for _, win in ipairs(bucket.windows) do
    for u = 1, cost do
      redis.call('ZREM', win.key, id .. ':' .. u)
    end
  end
end

-- The refusal for bucket `b` if the cost exceeds one of its windows'
-- limits: no departure can ever fit it (and `earliest` must not be asked).
local function never_fits(b, bucket)
  for _, win in ipairs(bucket.windows) do
    if cost > win.limit then return { 2, win.limit, tostring(b) } end
  end
  return nil
end

-- Admits the buckets whose flag is in `which` now, or reserves the departure in
-- those that bind it and in the request's own; the others are deferred to the
-- departure (a waiter holds no place in a shared bucket it does not wait for).
local function decide(which)
  for b, bucket in ipairs(buckets) do
    local refusal = which[bucket.flag] and never_fits(b, bucket)
    if refusal then return refusal end
  end
  local times = {}
  local d = now
  local worst = 1
  for b, bucket in ipairs(buckets) do
    if which[bucket.flag] then
      times[b] = bucket_earliest(bucket, cost)
      if times[b] > d then d = times[b]; worst = b end
    end
  end
  local wait = d - now
  if max_wait >= 0 and wait > max_wait then return { 1, wait, tostring(worst) } end
  local mask = ''
  for b, bucket in ipairs(buckets) do
    if not which[bucket.flag] then
      mask = mask .. '0'
    elseif wait == 0 or times[b] == d or bucket.own then
      charge(bucket, d)
      mask = mask .. '0'
    else
      mask = mask .. '1'
    end
  end
  if wait == 0 then mask = mask .. counts() end
  return { 0, wait, mask }
end

-- Whether the ticket's units, held in `bucket` since it was reserved, may
-- still leave now: a slow response since then may have widened a window, and
-- a fixed window's kept start may have moved (see agreed_start), so that the
-- window it leaves in also holds units from before the boundary it was
-- reserved at. Like `earliest`, in the windows of both the kept start and
-- the one the request saw: checked in the kept start's alone, a waiter that
-- saw a moved boundary left as one unit too many in the window it saw,
-- which a widening had filled since.
local function held_fits(bucket)
  for _, win in ipairs(bucket.windows) do
    local late = widening(win, now)
    if late > 0 or win.anchor >= 0 then
      -- The unit `limit - cost + 1` places before the ticket's first must no
      -- longer count (ranks are relative: expired members below shift both).
      local r = redis.call('ZRANK', win.key, id .. ':1')
      local back = r and (r + cost - 1 - win.limit)
      if back and back >= 0 then
        local s = redis.call('ZRANGE', win.key, back, back, 'WITHSCORES')
        local t = s[2] and tonumber(s[2])
        if t and win.anchor < 0 and t + win.len + late > now then return false end
        if t and win.anchor >= 0 then
          for _, start in ipairs({ win.anchor, win.own }) do
            if t + win.margin + late >= start_in(win, start, now) then return false end
          end
        end
      end
    end
  end
  return true
end

if op == 'acquire' then
  return decide({ [0] = true })
elseif op == 'depart' then
  -- The ticket's time has come: take the deferred buckets now, or give the
  -- ticket back and decide again, in one step (which refuses a cost that a
  -- limit lowered since the reservation can no longer fit).
  local ready = true
  for b, bucket in ipairs(buckets) do
    if never_fits(b, bucket) then
      ready = false
    elseif bucket.flag == 2 and bucket_earliest(bucket, cost) > now then
      ready = false
    elseif bucket.flag == 1 and not held_fits(bucket) then
      ready = false
    end
  end
  if ready then
    for _, bucket in ipairs(buckets) do
      if bucket.flag == 2 then charge(bucket, now) end
    end
    return { 0, 0, counts() }
  end
  for _, bucket in ipairs(buckets) do
    if bucket.flag == 1 then release(bucket) end
  end
  return decide({ [1] = true, [2] = true })
elseif op == 'release' then
  for _, bucket in ipairs(buckets) do
    if bucket.flag == 1 then release(bucket) end
  end
  return { 3, 0, '' }
elseif op == 'add' then
  local bucket = buckets[1]
  local win = bucket.windows[tonumber(ARGV[a]) + 1]
  if not win then return { 3, 0, '' } end
  earliest(win, 0)
  local furthest = 0
  for g = 1, tonumber(ARGV[a + 1]) do
    local units = tonumber(ARGV[a + 2 * g])
    local ahead = tonumber(ARGV[a + 2 * g + 1])
    -- Each departure its own members (a member added again would move).
    if units > 0 then add(win.key, math.min(units, win.limit), now + ahead, id .. '/' .. g) end
    furthest = math.max(furthest, ahead)
  end
  touch(bucket, furthest)
  return { 3, 0, '' }
elseif op == 'raise' then
  local bucket = buckets[1]
  local win = bucket.windows[tonumber(ARGV[a]) + 1]
  local units = tonumber(ARGV[a + 1])
  if not win then return { 3, 0, '' } end
  earliest(win, 0)
  local counted
  if win.anchor < 0 then
    counted = redis.call('ZCOUNT', win.key, before(now - win.len), now)
  else
    -- The server counted in the window of the start this call saw, which
    -- may begin after the kept start's and hold less: the lesser count of
    -- the two (from the kept start alone, units sent before the server's
    -- window began stood in for units it counted, and its window, once
    -- the kept one was over, admitted them again).
    for _, start in ipairs({ win.anchor, win.own }) do
      local c = redis.call('ZCOUNT', win.key, start_in(win, start, now), now)
      if not counted or c < counted then counted = c end
    end
  end
  units = units - counted
  if units > 0 then add(win.key, math.min(units, win.limit), now, id) end
  touch(bucket, 0)
  return { 3, 0, '' }
elseif op == 'block' then
  local bucket = buckets[1]
  local till = now + tonumber(ARGV[a])
  local current = tonumber(redis.call('HGET', bucket.meta, 'block') or '0')
  if till > current then redis.call('HSET', bucket.meta, 'block', till) end
  touch(bucket, till - now)
  return { 3, 0, '' }
elseif op == 'late' then
  local bucket = buckets[1]
  local w = tonumber(ARGV[a])
  local win = bucket.windows[w + 1]
  if not win then return { 3, 0, '' } end
  local late = tonumber(ARGV[a + 1])
  local till = now + win.len
  if win.late_until > now then
    late = math.max(late, win.late)
    till = math.max(till, win.late_until)
  end
  redis.call('HSET', bucket.meta, 'late:' .. w, late, 'late_until:' .. w, till)
  touch(bucket, till - now)
  return { 3, 0, '' }
elseif op == 'limit' then
  local bucket = buckets[1]
  redis.call('HSET', bucket.meta, 'limit:' .. ARGV[a], tonumber(ARGV[a + 1]))
  touch(bucket, 0)
  return { 3, 0, '' }
end
return redis.error_reply('tower-quota: unknown op')
