-- wrk script for bench/run.py: POST a chat completion, count requests sent, check
-- every response, and print one machine-readable JSON line from done().
--
-- Environment (set by bench/run.py):
--   BENCH_AUTH     value for the Authorization header (optional)
--   BENCH_MODEL    model name to request (default "bench-model")
--   BENCH_HEADER   a response header every response must carry (optional, lower-case)
--   BENCH_EXPECT   a substring every response body must contain (optional)
--   BENCH_PROMPT   the user message (default "Say hello in five words."; bench/run.py
--                  --prompt-bytes N sends an N-byte support ticket)
--   BENCH_MAX_TOKENS       the request's max_tokens (default 16)
--   BENCH_OVERHEAD_HEADER  a response header holding a number (ms) to average (optional)
--   BENCH_CONNECTIONS      the -c value, to undo wrk's latency correction (see done())
--
-- The request is formatted once per thread; request() only counts, so wrk's own cost per
-- request stays tiny. Latency is recorded by wrk before response() runs, so the checks do
-- not inflate the measured latency.

local auth = os.getenv("BENCH_AUTH")
local model = os.getenv("BENCH_MODEL") or "bench-model"
local must_header = os.getenv("BENCH_HEADER")
local expect = os.getenv("BENCH_EXPECT")
local overhead_header = os.getenv("BENCH_OVERHEAD_HEADER")
local prompt = os.getenv("BENCH_PROMPT")
if prompt == nil or prompt == "" then
  prompt = "Say hello in five words."
end
local max_tokens = tonumber(os.getenv("BENCH_MAX_TOKENS") or "") or 16

local function jstr(s)
  s = string.gsub(s, '\\', '\\\\')
  s = string.gsub(s, '"', '\\"')
  s = string.gsub(s, '[%c]', ' ')
  return '"' .. s .. '"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":'
  .. jstr(prompt) .. '}],"max_tokens":' .. string.format("%d", max_tokens)
  .. ',"temperature":0}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local req = nil
sent = 0
bad = 0
bad_sample = ""
ov_sum = 0
ov_n = 0
ov_max = 0

function init(args)
  req = wrk.format()
end

function request()
  sent = sent + 1
  return req
end

function response(status, headers, body)
  local ok = status == 200
  if ok and expect and expect ~= "" and not string.find(body, expect, 1, true) then
    ok = false
  end
  if ok and must_header and must_header ~= "" and headers[must_header] == nil then
    ok = false
  end
  if overhead_header and overhead_header ~= "" then
    local v = tonumber(headers[overhead_header] or "")
    if v then
      ov_sum = ov_sum + v
      ov_n = ov_n + 1
      if v > ov_max then
        ov_max = v
      end
    end
  end
  if not ok then
    bad = bad + 1
    if bad_sample == "" then
      bad_sample = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

-- wrk 4 applies a coordinated-omission correction to its latency histogram before done():
-- for every sample n >= 2e it adds synthetic samples at n-e, n-2e, ... (> e), where
-- e = duration / (requests / connections) is the mean interval per connection. That is
-- exactly invertible: raw[v] = corrected[v] - corrected[v + e] for v > e, else corrected[v].
-- We report both; the raw one is what a single request experienced.
local function raw_percentiles(summary, latency)
  local conns = tonumber(os.getenv("BENCH_CONNECTIONS") or "0") or 0
  if conns <= 0 or summary.requests == 0 then
    return nil, "no connections/requests"
  end
  local per_conn = math.floor(summary.requests / conns)
  local e = 0
  if per_conn > 0 then
    e = math.floor(summary.duration / per_conn)
  end
  local n = #latency
  -- latency(i) scans the histogram from min each call: bound the work.
  if n * (latency.max - latency.min + 1) > 4e9 then
    return nil, "histogram too wide to invert"
  end
  local vals, hist = {}, {}
  for i = 1, n do
    local v, c = latency(i)
    vals[i] = v
    hist[v] = c
  end
  local raw, total, sum, vmax = {}, 0, 0, 0
  for i = 1, n do
    local v = vals[i]
    local c = hist[v]
    if e > 0 and v > e then
      c = c - (hist[v + e] or 0)
    end
    raw[i] = c
    total = total + c
    sum = sum + c * v
    if c > 0 then
      vmax = v
    end
  end
  local expected = summary.requests - summary.errors.timeout
  if total ~= expected then
    return nil, string.format("inversion mismatch: %d raw samples for %d requests", total, expected)
  end
  local out = {}
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    local rank = math.floor(p / 100 * total + 0.5 + 0.5)
    local acc, val = 0, vmax
    for i = 1, n do
      acc = acc + raw[i]
      if acc >= rank then
        val = vals[i]
        break
      end
    end
    table.insert(out, string.format('"%s":%d', tostring(p), val))
  end
  return string.format('{"interval_us":%d,"count":%d,"mean":%.2f,"max":%d,"percentiles":{%s}}',
    e, total, sum / total, vmax, table.concat(out, ",")), nil
end

function done(summary, latency, requests)
  local total_sent, total_bad, sample = 0, 0, ""
  local osum, on, omax = 0, 0, 0
  for _, t in ipairs(threads) do
    total_sent = total_sent + t:get("sent")
    total_bad = total_bad + t:get("bad")
    osum = osum + t:get("ov_sum")
    on = on + t:get("ov_n")
    if t:get("ov_max") > omax then
      omax = t:get("ov_max")
    end
    local s = t:get("bad_sample")
    if sample == "" and s and s ~= "" then
      sample = s
    end
  end
  -- wrk calls request() once on thread 1 before the run (script_verify_request) to count
  -- pipelined requests; that call sends nothing.
  total_sent = total_sent - 1
  local pct = {}
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    table.insert(pct, string.format('"%s":%d', tostring(p), latency:percentile(p)))
  end
  local raw, why = raw_percentiles(summary, latency)
  if raw == nil then
    raw = "null"
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"sent":%d,"bad":%d,"bad_sample":%s,'
      .. '"overhead_header":{"n":%d,"sum_ms":%.6f,"max_ms":%.6f},"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"max":%d,"mean":%.2f,"stdev":%.2f,"percentiles":{%s}},'
      .. '"raw_latency_us":%s,"raw_note":%s}\n',
    summary.duration, summary.requests, total_sent, total_bad, jstr(sample), on, osum, omax,
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ","),
    raw, jstr(why or "")))
end
