-- wrk script for scripts/bench/data_api.py: each request gets its own, never-used DPoP proof.
--
--   wrk -t 2 -c 32 -d 20s --latency -s wrk_dpop.lua URL -- PATH [PREFIX CASE OFFICER]
--
-- With a PREFIX, thread n reads PREFIX<n>.txt: one "access-token<TAB>proof" per line, a slice
-- no other thread has (a replayed proof is refused, so threads must not share one). Requests
-- are built once, in init, so sending one costs the same as the bare baseline's. Without a
-- PREFIX it sends plain GET PATH (the bare Flask baseline). done() prints one line,
-- "BENCH_RESULT {json}", which data_api.py reads.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1] or "/"
   local prefix = args[2]
   prepared = {}
   used = 0
   exhausted = 0
   if prefix == nil or prefix == "" then
      prepared[1] = wrk.format("GET", path)
      reuse = true
      return
   end
   reuse = false
   local file = assert(io.open(prefix .. id .. ".txt", "r"))
   for line in file:lines() do
      local token, proof = line:match("^(%S+)\t(%S+)$")
      if token then
         prepared[#prepared + 1] = wrk.format("GET", path, {
            ["Authorization"] = "DPoP " .. token,
            ["DPoP"] = proof,
            ["Case-Reference"] = args[3],
            ["Acting-Officer"] = args[4],
         })
      end
   end
   file:close()
end

function request()
   if reuse then
      return prepared[1]
   end
   used = used + 1
   local next_request = prepared[used]
   if next_request == nil then
      -- Out of proofs: stop this thread. The request returned now repeats a used proof and is
      -- refused, so the run is counted as failed rather than quietly measuring less.
      exhausted = exhausted + 1
      wrk.thread:stop()
      return prepared[#prepared]
   end
   return next_request
end

function done(summary, latency, requests)
   local out_of_proofs = 0
   for _, thread in ipairs(threads) do
      out_of_proofs = out_of_proofs + (thread:get("exhausted") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
         .. '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, '
         .. '"status": %d, "timeout": %d, "exhausted": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout, out_of_proofs
   ))
end
