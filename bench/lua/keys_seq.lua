-- Used by bench/keys.sh. Every request gets a unique sequence number: thread i
-- (1-based, set in setup) owns the global numbers (i-1)*quota+1 .. i*quota, and
-- its own counter walks through them, so ids never collide across threads.
-- Once a thread's range is used up it sends cheap GET /healthz requests until
-- keys.sh sees the expected row count and stops wrk.
--   KEYS_MODE=tenants : POST /tenants {"id":"t<n>","name":"t<n>"}
--   KEYS_MODE=secrets : PUT /tenants/<KEYS_TENANT_PREFIX><n % K + 1>/secrets/s<n>
--                       {"value":"<64 random alphanumerics>"}
-- KEYS_TOTAL = n's upper bound, KEYS_THREADS = wrk -t, KEYS_TENANTS = K.
local dir = os.getenv("BENCH_LUA_DIR") or "bench/lua"
dofile(dir .. "/report.lua")

local mode = os.getenv("KEYS_MODE") or "tenants"
local total = tonumber(os.getenv("KEYS_TOTAL") or "0")
local nthreads = tonumber(os.getenv("KEYS_THREADS") or "1")
local ntenants = tonumber(os.getenv("KEYS_TENANTS") or "1")
local tprefix = os.getenv("KEYS_TENANT_PREFIX") or "r"
local quota = math.ceil(total / nthreads)

local next_id = 1
function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
end

local counter = 0
local alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

function init(args)
   math.randomseed(os.time() + (tid or 0) * 7919)
   wrk.headers["Content-Type"] = "application/json"
end

local function rand64()
   local t = {}
   for i = 1, 64 do
      local k = math.random(1, 62)
      t[i] = alnum:sub(k, k)
   end
   return table.concat(t)
end

-- wrk calls request() once on the first thread's state right after init()
-- (script_verify_request) and throws that request away: skip it there.
local verify_pending = nil
function request()
   if verify_pending == nil then verify_pending = (tid == 1) end
   if verify_pending then
      verify_pending = false
      return wrk.format("GET", "/healthz", nil, nil)
   end
   counter = counter + 1
   local n = (tid - 1) * quota + counter
   if counter > quota or n > total then
      return wrk.format("GET", "/healthz", nil, nil)
   end
   if mode == "tenants" then
      local id = "t" .. n
      return wrk.format("POST", "/tenants", nil, '{"id":"' .. id .. '","name":"' .. id .. '"}')
   end
   local t = tprefix .. ((n % ntenants) + 1)
   return wrk.format("PUT", "/tenants/" .. t .. "/secrets/s" .. n, nil, '{"value":"' .. rand64() .. '"}')
end
