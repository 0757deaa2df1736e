-- GET /tenants/<random tenant>/integrations/svc<random k>/resolved over the
-- SCALE_TENANTS seeded tenants (auth header from -H); prints report.lua's line.
local dir = os.getenv("BENCH_LUA_DIR") or "bench/lua"
dofile(dir .. "/report.lua")
local N = tonumber(os.getenv("SCALE_TENANTS") or "100")

function init(args)
   math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

function request()
   return wrk.format("GET", string.format("/tenants/t%06d/integrations/svc%d/resolved",
      math.random(0, N - 1), math.random(0, 2)))
end
