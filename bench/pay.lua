-- wrk script: every request is an OSMP pay with a txn_id never sent before.
--
--   wrk -t2 -c8 -d10s --latency -s bench/pay.lua http://127.0.0.1:PORT/cgi-bin/osmp.cgi \
--       -- PREFIX ACCOUNT TXN_DATE SUM
--
-- txn_id = PREFIX .. two-digit thread number .. nine-digit per-thread counter, so ids are
-- unique across threads, and across runs as long as each run uses its own PREFIX (digits,
-- at most 9 of them: a txn_id has at most 20 digits). ACCOUNT defaults to 59071 (subscriber
-- 5907 of sql/nodeny.sql), TXN_DATE (YYYYMMDDHHMMSS, must be inside the system's
-- txn_window_hours) to now, SUM to 1.00.

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_no", thread_count)
end

function init(args)
   prefix   = args[1] or "1"
   account  = args[2] or "59071"
   txn_date = args[3] or os.date("%Y%m%d%H%M%S")
   sum      = args[4] or "1.00"
   counter  = 0
   base     = wrk.path .. "?command=pay&account=" .. account .. "&sum=" .. sum
              .. "&txn_date=" .. txn_date .. "&txn_id="
end

function request()
   counter = counter + 1
   local txn_id = string.format("%s%02d%09d", prefix, thread_no, counter)
   return wrk.format("GET", base .. txn_id)
end
