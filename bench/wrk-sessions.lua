-- wrk script for bench/run-proxies.sh: every request carries an X-Session-ID, taken in turn from
-- WRK_SESSIONS ids (1000), so that every proxy takes its consistent-hash path over all of them;
-- WRK_METHOD (GET) WRK_PATH (/api/version), with WRK_BODY as a JSON body when set. The requests are
-- formatted once in init, so the per-request cost in wrk is a table lookup. done() prints one JSON
-- line after wrk's own report.
local sessions = tonumber(os.getenv("WRK_SESSIONS") or "1000")
local method = os.getenv("WRK_METHOD") or "GET"
local path = os.getenv("WRK_PATH") or "/api/version"
local body = os.getenv("WRK_BODY")
local prepared = {}
local next_index = 0

function init(args)
  for i = 1, sessions do
    local headers = { ["X-Session-ID"] = string.format("wrk-session-%d", i) }
    if body then
      headers["Content-Type"] = "application/json"
    end
    prepared[i] = wrk.format(method, path, headers, body)
  end
end

function request()
  next_index = next_index % sessions + 1
  return prepared[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "rps": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d,' ..
    ' "max_us": %d, "errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
