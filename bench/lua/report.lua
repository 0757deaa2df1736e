-- Shared by read.lua and write.lua: prints one machine-readable line that
-- bench/run.sh parses. Latencies are in microseconds inside wrk; printed in ms.
-- wrk counts every HTTP status > 399 in summary.errors.status (its
-- "Non-2xx or 3xx responses" line).
function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
      "non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d bytes=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
