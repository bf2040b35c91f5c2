#!/usr/bin/env python3
"""ABillS's pay as one CALL of a stored procedure, next to its eight statements, the same work
merged into six statements, and NoDeny's six: what the round trips cost, for #20 item 3
(not the product's code; the procedure paysys ships is sql/abills-pay.sql).

Each kind sends the statements paysys sends for a plain new pay (docs/BENCHMARKS.md,
"A stored procedure"), as text from PyMySQL, to an ABillS database (sql/abills.sql and
sql/paysys.sql, with bench/prototypes/abills_call.sql's procedure) and a NoDeny one
(sql/nodeny.sql and sql/paysys.sql). Prints the median time of one pay, one at a time
and alternating kinds, and the req/s of eight clients at once, kind by kind.

    pip install pymysql
    mysql -e 'CREATE DATABASE ab; CREATE DATABASE nd'
    mysql ab < sql/abills.sql; mysql ab < sql/paysys.sql
    mysql ab < bench/prototypes/abills_call.sql
    mysql nd < sql/nodeny.sql; mysql nd < sql/paysys.sql
    bench/prototypes/abills_call.py ab nd [PAYS]

PyMySQL spends more per statement on the client than paysys's driver does, which makes
the eight statements look worse than they are: read the CALL against NoDeny's six.
"""
import statistics
import sys
import threading
import time

import pymysql

AB_DB, ND_DB = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1500

TARGET = (
    "SELECT u.uid, u.gid, u.id, IFNULL(pi.contract_id, ''), u.disable, IFNULL(g.disable_paysys, 0), "
    "IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id), "
    "CAST(IF(u.company_id > 0, cb.deposit, b.deposit) AS DECIMAL(24,2)), "
    "CONCAT_WS(' ', pi.fio, pi.fio2, pi.fio3) FROM users u LEFT JOIN users_pi pi ON pi.uid = u.uid "
    "LEFT JOIN `groups` g ON g.gid = u.gid LEFT JOIN companies c ON c.id = u.company_id "
    "LEFT JOIN bills b ON b.id = u.bill_id LEFT JOIN bills cb ON cb.id = c.bill_id "
    "WHERE u.deleted = 0 AND u.domain_id = %s AND u.id = %s LIMIT 2"
)

_lock = threading.Lock()
_seq = [int(time.time() * 1000) % 100_000_000 * 10]


def next_txn(tag):
    with _lock:
        _seq[0] += 1
        return f"{tag}{_seq[0]}"


def cursor(db):
    c = pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True).cursor()
    c.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return c


def abills_statements(c):
    t = next_txn("s")
    text = "OSM:" + t
    c.execute("START TRANSACTION")
    c.execute(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, "
        "created, caller_ip, domain_id) VALUES ('osmp', %s, 'test1', 0, CAST('1.00' AS "
        "DECIMAL(16,2)), NOW(), NOW(), '127.0.0.1', 0)",
        (t,),
    )
    row = c.lastrowid
    c.execute(TARGET, (0, "test1"))
    c.fetchall()
    c.execute(
        "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, "
        "ip, code, paysys_ip, domain_id, status) VALUES (44, NOW(), CAST('1.00' AS DECIMAL(16,2)), "
        "0, 1, %s, 'txn_id, 1', 0, '', 2130706433, 0, 2)",
        (text,),
    )
    log = c.lastrowid
    c.execute(
        "UPDATE bills SET deposit = (@paysys_deposit := CAST(deposit AS DECIMAL(24,6))) "
        "+ CAST('1.00' AS DECIMAL(16,2)) WHERE id = 1"
    )
    c.execute(
        "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, "
        "inner_describe, amount, currency, reg_date) VALUES (NOW(), CAST('1.00' AS DECIMAL(16,2)), "
        "'OSMP Payments', 2130706433, CAST(@paysys_deposit AS DECIMAL(24,6)), 1, 2, 2, %s, 1, '', "
        "CAST('1.00' AS DECIMAL(16,2)), 0, NOW())",
        (text,),
    )
    pay = c.lastrowid
    c.execute(
        "UPDATE paysys_txn SET subscriber_id = 1, payment_ref = %s, prv_txn = %s WHERE id = %s "
        "AND NOT EXISTS (SELECT 1 FROM payments WHERE ext_id IN (%s) AND id <> %s) "
        "AND NOT EXISTS (SELECT 1 FROM paysys_log WHERE domain_id IN (0, 0) "
        "AND transaction_id IN (%s) AND id <> %s)",
        (pay, log, row, text, pay, text, log),
    )
    assert c.rowcount == 1
    c.execute("COMMIT")


def abills_six(c):
    """The eight statements merged into six: the lookup in the log row's INSERT … SELECT …
    RETURNING, the deposit read by the payment's INSERT … SELECT … FOR UPDATE, the bill raised
    by the UPDATE that completes our row."""
    t = next_txn("x")
    text = "OSM:" + t
    c.execute("START TRANSACTION")
    c.execute(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, "
        "created, caller_ip, domain_id) VALUES ('osmp', %s, 'test1', 0, CAST('1.00' AS "
        "DECIMAL(16,2)), NOW(), NOW(), '127.0.0.1', 0)",
        (t,),
    )
    row = c.lastrowid
    # The subscriber's lookup in the log row's INSERT: payable ones only, the bill back.
    c.execute(
        "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, "
        "ip, code, paysys_ip, domain_id, status) SELECT 44, NOW(), CAST('1.00' AS DECIMAL(16,2)), "
        "0, u.uid, %s, 'txn_id, 1', 0, '', 2130706433, 0, 2 FROM users u "
        "LEFT JOIN `groups` g ON g.gid = u.gid LEFT JOIN companies c ON c.id = u.company_id "
        "WHERE u.deleted = 0 AND u.domain_id = %s AND u.id = %s AND IFNULL(g.disable_paysys, 0) = 0 "
        "AND (@paysys_bill := IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id)) <> 0 "
        "RETURNING id, uid, @paysys_bill",
        (text, 0, "test1"),
    )
    log, uid, bill = c.fetchone()
    c.execute(
        "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, "
        "inner_describe, amount, currency, reg_date) SELECT NOW(), CAST('1.00' AS DECIMAL(16,2)), "
        "'OSMP Payments', 2130706433, b.deposit, %s, 2, 2, %s, b.id, '', "
        "CAST('1.00' AS DECIMAL(16,2)), 0, NOW() FROM bills b WHERE b.id = %s FOR UPDATE",
        (uid, text, bill),
    )
    pay = c.lastrowid
    c.execute(
        "UPDATE paysys_txn t JOIN bills b ON b.id = %s "
        "SET b.deposit = b.deposit + CAST('1.00' AS DECIMAL(16,2)), "
        "t.subscriber_id = %s, t.payment_ref = %s, t.prv_txn = %s WHERE t.id = %s "
        "AND NOT EXISTS (SELECT 1 FROM payments WHERE ext_id IN (%s) AND id <> %s) "
        "AND NOT EXISTS (SELECT 1 FROM paysys_log WHERE domain_id IN (0, 0) "
        "AND transaction_id IN (%s) AND id <> %s)",
        (bill, uid, pay, log, row, text, pay, text, log),
    )
    assert c.rowcount == 2, c.rowcount
    c.execute("COMMIT")


def abills_call(c):
    t = next_txn("c")
    c.execute("CALL paysys_pay_abills('osmp', %s, 'test1', '1.00', %s, 0)", (t, "OSM:" + t))
    c.fetchall()
    while c.nextset():
        pass


def nodeny_statements(c):
    t = next_txn("n")
    c.execute("START TRANSACTION")
    c.execute(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, "
        "created, caller_ip, domain_id) VALUES ('osmp', %s, '5907', 5907, CAST('1.00' AS "
        "DECIMAL(16,2)), NOW(), NOW(), '127.0.0.1', 0)",
        (t,),
    )
    row = c.lastrowid
    c.execute(
        "UPDATE users SET balance = balance + CAST('1.00' AS DECIMAL(16,2)) WHERE id = 5907 AND mid = 0"
    )
    c.execute(
        "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, type, "
        "category) VALUES (5907, CAST('1.00' AS DECIMAL(16,2)), 1700000000, 0, 2130706433, 0, '', "
        "'osmp txn_id=1', 'paysys', 10, 2)"
    )
    pay = c.lastrowid
    c.execute(
        "UPDATE paysys_txn SET subscriber_id = 5907, payment_ref = %s, prv_txn = %s WHERE id = %s",
        (pay, row, row),
    )
    c.execute("COMMIT")


KINDS = [
    ("ABillS, 8 statements", AB_DB, abills_statements),
    ("ABillS, one CALL", AB_DB, abills_call),
    ("ABillS, 6 statements", AB_DB, abills_six),
    ("NoDeny, 6 statements", ND_DB, nodeny_statements),
]


def one_at_a_time():
    cursors = {db: cursor(db) for db in (AB_DB, ND_DB)}
    times = {name: [] for name, _, _ in KINDS}
    for _ in range(N):
        for name, db, pay in KINDS:
            t0 = time.perf_counter()
            pay(cursors[db])
            times[name].append((time.perf_counter() - t0) * 1000)
    nodeny = statistics.median(times["NoDeny, 6 statements"])
    print(f"one at a time, {N} pays of each, alternating:")
    for name, _, _ in KINDS:
        m = statistics.median(times[name])
        print(f"  {name:22s} median {m:.3f} ms; NoDeny's time / this: {nodeny / m * 100:.0f} %")


def at_once(db, pay, clients=8, each=150):
    def client():
        c = cursor(db)
        for _ in range(each):
            pay(c)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients * each / (time.perf_counter() - t0)


one_at_a_time()
for block in range(2):
    rates = {name: at_once(db, pay) for name, db, pay in KINDS}
    print(
        f"8 clients at once, block {block + 1}: "
        + ", ".join(f"{name} {rate:.0f} req/s" for name, rate in rates.items())
    )
