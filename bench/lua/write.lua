-- Sends the same JSON body on every request with BENCH_METHOD (PUT for
-- Tessera, POST for OpenBao KV v2). Every request creates a new version on
-- both servers, so the body need not change. The body is read once from
-- BENCH_BODY_FILE; auth header comes from -H on wrk's command line.
local dir = os.getenv("BENCH_LUA_DIR") or "bench/lua"
dofile(dir .. "/report.lua")

local path = os.getenv("BENCH_BODY_FILE")
if not path then
   error("BENCH_BODY_FILE is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = os.getenv("BENCH_METHOD") or "PUT"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
