-- wrk script: sends the requests of a file, one per line, each once per thread offset:
--
--   wrk -t2 -c8 -d10s -s bench/requests.lua http://127.0.0.1:PORT -- FILE THREADS
--
-- A line is METHOD<TAB>PATH, or METHOD<TAB>PATH<TAB>BODY for a POST (an XML or JSON body,
-- one line, sent as text/xml; a body starting "data=" as a form), optionally followed by
-- <TAB>AUTHORIZATION, the value of an Authorization header (Payme's key). Thread n starts at its own share of the file, so that as long as
-- the file is longer than the run, no request is sent twice (a repeated pay would measure a
-- repeat's answer, not a payment). bench_6_protocols_web writes the files.

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_no", thread_count)
end

function init(args)
   requests = {}
   for line in io.lines(args[1]) do
      local method, path, body, auth = line:match("^(%u+)\t([^\t]*)\t?([^\t]*)\t?(.*)$")
      if method then
         table.insert(requests, { method, path, body, auth })
      end
   end
   local threads = tonumber(args[2]) or 1
   local share = math.floor(#requests / threads)
   index = (thread_no - 1) * share
end

function request()
   index = index + 1
   local r = requests[(index - 1) % #requests + 1]
   if r[3] ~= "" then
      -- Portmone's form (data=<xml>, url-encoded) goes as a form; every other body is XML.
      local headers = { ["Content-Type"] = "text/xml" }
      if r[3]:sub(1, 5) == "data=" then
         headers["Content-Type"] = "application/x-www-form-urlencoded"
      end
      if r[4] ~= "" then
         headers["Authorization"] = r[4]
      end
      return wrk.format(r[1], r[2], headers, r[3])
   end
   return wrk.format(r[1], r[2])
end
