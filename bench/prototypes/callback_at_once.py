#!/usr/bin/env python3
"""NoDeny's card callback next to a terminal's pay, eight clients at once, replayed as
text from PyMySQL: where the callback's extra server time goes, for #18 item 6 (not the
product's code).

Four kinds of transaction, each the statements paysys sends (docs/BENCHMARKS.md,
"bench_8: a callback's cost at once, replayed"), each pay to one of eight subscribers
(one per client):
- the terminal's pay: INSERT into paysys_txn, UPDATE users, INSERT pays, UPDATE
  paysys_txn, COMMIT;
- the callback as shipped: its first statement INSERT ... SELECT ... FOR UPDATE
  RETURNING reads the order, its last UPDATE joins the order and marks it paid;
- the callback with a locking SELECT of the order and an INSERT ... VALUES (one round
  trip more, and no AUTO-INC table lock, which an INSERT ... SELECT holds to its end);
- the callback that does not rewrite the order (its last UPDATE the terminal's own):
  what deriving "paid" from paysys_txn instead of storing it would leave.

    pip install pymysql
    bench/prototypes/callback_at_once.py [ROUNDS]

Makes (and drops first) a database `replay_callback` on 127.0.0.1 as root from
sql/nodeny.sql and sql/paysys.sql. Prints each kind's req/s per round, and the terminal's
median over each callback kind's.
"""
import os
import subprocess
import sys
import threading
import time

import pymysql

DB = "replay_callback"
THREADS, PER_THREAD = 8, 150
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = threading.local()

subprocess.run(["mariadb", "-e", f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}"], check=True)
for f in ["sql/nodeny.sql", "sql/paysys.sql"]:
    with open(os.path.join(REPO, f), "rb") as sql:
        subprocess.run(["mariadb", DB], stdin=sql, check=True)
subprocess.run(["mariadb", DB, "-e",
                "INSERT INTO users (id, mid, name, fio, balance) "
                "SELECT 10000 + seq, 0, CONCAT('u', seq), 'x', 0 FROM seq_0_to_7"], check=True)


def conn():
    c = pymysql.connect(host="127.0.0.1", user="root", database=DB, autocommit=True)
    with c.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return c


def make_orders(n, tag):
    c = conn()
    with c.cursor() as cur:
        cur.executemany(
            "INSERT INTO paysys_order (system_name, order_id, account, amount, created, state, "
            "charged, currency, valid_until) VALUES ('liqpay', %s, '59071', 1.00, NOW(), 'waiting', "
            "1.00, 'UAH', NOW() + INTERVAL 1 DAY)", [(f"{tag}{i}",) for i in range(n)])
    c.close()


ORDER_OPEN = ("o.system_name = 'liqpay' AND o.order_id = %s AND o.cancelled IS NULL "
              "AND o.state NOT IN ('reversed', 'mismatch') "
              "AND CAST(o.currency AS BINARY) = CAST('UAH' AS BINARY) "
              "AND o.charged = CAST('1.00' AS DECIMAL(16,2))")
TXN = ("INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, "
       "created, caller_ip, domain_id) ")
PAYS = ("INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, "
        "type, category) VALUES (%s, 1.00, UNIX_TIMESTAMP(), 0, 0, 0, '', %s, 'paysys', 10, 0)")


def credit(cur, oid):
    """NoDeny's credit: the balance (the subscriber's row lock), then the pays row."""
    cur.execute("UPDATE users SET balance = balance + CAST('1.00' AS DECIMAL(16,2)) "
                "WHERE id = %s AND mid = 0", (LOCAL.uid,))
    cur.execute(PAYS, (LOCAL.uid, f"txn_id={oid}"))
    return cur.lastrowid


def order_read_by_insert(cur, oid):
    cur.execute(TXN + "SELECT o.system_name, o.order_id, o.account, 0, o.amount, NOW(), NOW(), "
                "'1.2.3.4', o.domain_id FROM paysys_order o WHERE " + ORDER_OPEN +
                " FOR UPDATE RETURNING id, account, CAST(amount AS CHAR), domain_id", (oid,))
    return cur.fetchone()[0]


def completed_with_order(cur, row, ref):
    cur.execute(
        "UPDATE paysys_txn t JOIN paysys_order o ON o.system_name = t.system_name "
        "AND o.order_id = t.txn_id AND o.cancelled IS NULL "
        "AND o.state NOT IN ('reversed', 'mismatch') "
        "AND (o.subscriber_id IS NULL OR o.subscriber_id = %s) "
        "SET t.account = '59071', t.subscriber_id = %s, t.payment_ref = %s, t.prv_txn = %s, "
        "o.state = 'paid', o.provider_status = 'success', o.updated = NOW() WHERE t.id = %s",
        (LOCAL.uid, LOCAL.uid, ref, row, row))


def completed_alone(cur, row, ref):
    cur.execute("UPDATE paysys_txn SET subscriber_id = %s, payment_ref = %s, prv_txn = %s "
                "WHERE id = %s", (LOCAL.uid, ref, row, row))


def terminal(cur, oid):
    cur.execute("BEGIN")
    cur.execute(TXN + "VALUES ('osmp', %s, '59071', 0, CAST('1.00' AS DECIMAL(16,2)), NOW(), "
                "NOW(), '1.2.3.4', 0)", (oid,))
    row = cur.lastrowid
    completed_alone(cur, row, credit(cur, oid))
    cur.execute("COMMIT")


def callback_shipped(cur, oid):
    cur.execute("BEGIN")
    row = order_read_by_insert(cur, oid)
    completed_with_order(cur, row, credit(cur, oid))
    cur.execute("COMMIT")


def callback_locking_select(cur, oid):
    cur.execute("BEGIN")
    cur.execute("SELECT account, CAST(amount AS CHAR), domain_id FROM paysys_order o WHERE "
                + ORDER_OPEN + " FOR UPDATE", (oid,))
    account, amount, domain = cur.fetchone()
    cur.execute(TXN + "VALUES ('liqpay', %s, %s, 0, %s, NOW(), NOW(), '1.2.3.4', %s) "
                "RETURNING id", (oid, account, amount, domain))
    row = cur.fetchone()[0]
    completed_with_order(cur, row, credit(cur, oid))
    cur.execute("COMMIT")


def callback_order_kept(cur, oid):
    cur.execute("BEGIN")
    row = order_read_by_insert(cur, oid)
    completed_alone(cur, row, credit(cur, oid))
    cur.execute("COMMIT")


def at_once(fn, tag):
    make_orders(THREADS * PER_THREAD, tag)
    conns = [conn() for _ in range(THREADS)]

    def worker(k):
        LOCAL.uid = 10000 + k
        cur = conns[k].cursor()
        for i in range(PER_THREAD):
            fn(cur, f"{tag}{k * PER_THREAD + i}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = THREADS * PER_THREAD / (time.perf_counter() - started)
    for c in conns:
        c.close()
    return rate


KINDS = [
    ("terminal's pay", terminal),
    ("callback as shipped", callback_shipped),
    ("callback, locking SELECT + INSERT VALUES", callback_locking_select),
    ("callback, order not rewritten", callback_order_kept),
]
rates = {name: [] for name, _ in KINDS}
for r in range(ROUNDS):
    for k, (name, fn) in enumerate(KINDS):
        rates[name].append(at_once(fn, f"r{r}k{k}x"))
median = {name: sorted(v)[len(v) // 2] for name, v in rates.items()}
for name, _ in KINDS:
    print(f"{name:42s} req/s " + " ".join(f"{x:6.0f}" for x in rates[name]))
for name, _ in KINDS[1:]:
    print(f"{name}: the terminal's pay / it, at once: x{median[KINDS[0][0]] / median[name]:.2f}")
