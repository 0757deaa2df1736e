-- GET the URL given on wrk's command line; auth header comes from -H.
-- Loads report.lua from the same folder (BENCH_LUA_DIR) for the summary line.
local dir = os.getenv("BENCH_LUA_DIR") or "bench/lua"
dofile(dir .. "/report.lua")

wrk.method = "GET"
