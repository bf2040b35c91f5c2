-- paysys's own tables. Created in the billing's database, so that one transaction spans
-- our exactly-once row and the billing's payment rows. Safe to run again.

-- One row per payment we committed. The UNIQUE key on (system_name, txn_id) is what makes a
-- payment happen exactly once: the row is inserted in the same transaction as the balance
-- change, so a second, concurrent insert of the same txn waits for the first and then fails.
-- prv_txn is the number the payment was answered with: our id (NoDeny) or ABillS's
-- paysys_log.id; a cancel names it.
CREATE TABLE IF NOT EXISTS paysys_txn (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  system_name   VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'compared exactly: qiwi and QIWI are two systems',
  txn_id        VARCHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the payment system''s id, compared exactly (PbA7x and pba7X are two payments): OSMP txn_id, 24NonStop PAY_ID, …',
  account       VARCHAR(64)     NOT NULL,
  subscriber_id BIGINT UNSIGNED NOT NULL,
  amount        DECIMAL(16,2)   NOT NULL,
  txn_date      DATETIME        NOT NULL,
  created       DATETIME        NOT NULL,
  caller_ip     VARCHAR(45)     NOT NULL DEFAULT '',
  payment_ref   BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'the billing''s payment row (NoDeny pays.id, ABillS payments.id)',
  prv_txn       BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'the number the payment was answered with (ours, or ABillS paysys_log.id)',
  cancelled     DATETIME        NULL DEFAULT NULL COMMENT 'when it was reversed by a cancel',
  domain_id     INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'ABillS domain (PATH_INFO)',
  PRIMARY KEY (id),
  UNIQUE KEY system_txn (system_name, txn_id),
  KEY prv_txn (prv_txn),
  KEY subscriber (subscriber_id),
  KEY created (created),
  KEY txn_date (txn_date) COMMENT 'paysys report and reconcile read a range of days',
  KEY payment_ref (payment_ref) COMMENT 'paysys audit: which billing rows our ledger knows',
  KEY cancelled (cancelled) COMMENT 'paysys audit: the payments cancelled over a range of days'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Brings a paysys_txn made by an earlier version up to date, and does nothing to a current
-- one. Earlier tables compared system_name ignoring letter case, so a system named QIWI
-- would have found the txn ids of one named qiwi: names are ASCII (the config allows
-- letters, digits, '_' and '-'), so the change cannot fail on existing rows.
ALTER TABLE paysys_txn MODIFY system_name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'compared exactly: qiwi and QIWI are two systems';

-- Columns added since the first version, for a table made by it (MariaDB: IF NOT EXISTS
-- makes each a no-op on a current table). Rows of earlier versions were answered with id.
ALTER TABLE paysys_txn ADD COLUMN IF NOT EXISTS prv_txn BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'the number the payment was answered with (ours, or ABillS paysys_log.id)';
ALTER TABLE paysys_txn ADD COLUMN IF NOT EXISTS cancelled DATETIME NULL DEFAULT NULL COMMENT 'when it was reversed by a cancel';
ALTER TABLE paysys_txn ADD COLUMN IF NOT EXISTS domain_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'ABillS domain (PATH_INFO)';
CREATE INDEX IF NOT EXISTS prv_txn ON paysys_txn (prv_txn);
-- Payment ids of protocols other than OSMP are up to 64 characters (a GUID and more), and
-- they are exact text: earlier tables compared them ignoring letter case, so a payment
-- PbA7x made pba7X look like a repeat of it. Rows that differ in case cannot exist under
-- the old collation, so the change cannot fail on existing rows.
ALTER TABLE paysys_txn MODIFY txn_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the payment system''s id, compared exactly (PbA7x and pba7X are two payments): OSMP txn_id, 24NonStop PAY_ID, …';
CREATE INDEX IF NOT EXISTS txn_date ON paysys_txn (txn_date) COMMENT 'paysys report and reconcile read a range of days';
CREATE INDEX IF NOT EXISTS payment_ref ON paysys_txn (payment_ref) COMMENT 'paysys audit: which billing rows our ledger knows';
CREATE INDEX IF NOT EXISTS cancelled ON paysys_txn (cancelled) COMMENT 'paysys audit: the payments cancelled over a range of days';
UPDATE paysys_txn SET prv_txn = id WHERE prv_txn = 0;

-- One row per pay we refused from a known payment system (a bad account, a sum out of
-- bounds, a txn_date out of the window, a conflict): the answer it was given and why, for
-- `paysys report`. Checks, statuses, temporary errors and unknown callers are in the log
-- file only. txn_id, account and amount are as the caller sent them (amount NULL when it was
-- not a sum).
CREATE TABLE IF NOT EXISTS paysys_refusal (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at            DATETIME        NOT NULL,
  system_name   VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  txn_id        VARCHAR(64)     NOT NULL DEFAULT '',
  account       VARCHAR(64)     NOT NULL DEFAULT '',
  amount        DECIMAL(16,2)   NULL,
  result        VARCHAR(16)     NOT NULL COMMENT 'the protocol''s result code as answered',
  comment       VARCHAR(32)     NOT NULL COMMENT 'the protocol''s comment as answered (nod4, nod12)',
  reason        VARCHAR(255)    NOT NULL,
  caller_ip     VARCHAR(45)     NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  KEY at (at),
  KEY system_txn (system_name, txn_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A paysys_refusal made by an earlier version kept 20 characters of a refused txn_id.
ALTER TABLE paysys_refusal MODIFY txn_id VARCHAR(64) NOT NULL DEFAULT '';

-- One row per order a payment system booked before paying it (EasyPay: Payment books,
-- Confirm pays), and per card payment a subscriber started on our page (LiqPay, Monobank,
-- WayForPay: the order is stored before the browser leaves for the provider). The id is
-- the PaymentId a booking is answered with; order_id is what the payment system knows the
-- order by; the UNIQUE key makes a repeated booking of the same order id find the first.
-- A confirmation, or a card provider's verified success, pays the order through paysys_txn
-- like any payment, with the order id as its txn_id: exactly once.
CREATE TABLE IF NOT EXISTS paysys_order (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  system_name   VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  order_id      VARCHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'compared exactly, as paysys_txn.txn_id',
  account       VARCHAR(64)     NOT NULL,
  amount        DECIMAL(16,2)   NOT NULL COMMENT 'what the subscriber is credited',
  created       DATETIME        NOT NULL,
  cancelled     DATETIME        NULL DEFAULT NULL COMMENT 'cancelled before it was confirmed: never paid',
  state         VARCHAR(16)     CHARACTER SET ascii NOT NULL DEFAULT 'booked' COMMENT 'booked (EasyPay), or a card order''s: waiting, paid, failed, expired, reversed, mismatch',
  charged       DECIMAL(16,2)   NULL COMMENT 'card orders: what the provider charges, amount plus commission',
  currency      CHAR(3)         CHARACTER SET ascii NOT NULL DEFAULT '',
  provider_ref  VARCHAR(64)     NOT NULL DEFAULT '' COMMENT 'the provider''s id of the payment (LiqPay payment_id, Monobank invoiceId)',
  provider_status VARCHAR(32)   NOT NULL DEFAULT '' COMMENT 'the provider''s last word, as sent',
  status_at     DATETIME(3)     NULL COMMENT 'when the provider says its last word was said: an older one never overwrites it',
  domain_id     INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'ABillS domain the order was made in',
  valid_until   DATETIME        NULL COMMENT 'card orders: the sweeper asks about it until then',
  note          VARCHAR(255)    NOT NULL DEFAULT '' COMMENT 'for the admin: an amount that differs, a reversal',
  updated       DATETIME        NULL,
  caller_ip     VARCHAR(45)     NOT NULL DEFAULT '' COMMENT 'card orders: who asked for it on the page (IPv6: its /64), for the page''s per-address limit',
  page_url      VARCHAR(255)    NULL COMMENT 'card orders: where the provider takes the subscriber (Monobank pageUrl), for a repeated request within minutes',
  polled        DATETIME        NULL COMMENT 'card orders: when the sweeper last asked the provider, least recently asked first',
  subscriber_id BIGINT UNSIGNED NULL COMMENT 'card orders: whom the account named when the order was made, the only subscriber its payment may credit',
  PRIMARY KEY (id),
  UNIQUE KEY system_order (system_name, order_id),
  KEY state (state, valid_until),
  KEY caller_created (caller_ip, created) COMMENT 'the page counts a caller''s orders of the last hour',
  KEY account_created (account, created) COMMENT 'the page counts an account''s orders of the last hour, and finds one to reuse',
  KEY sweep (system_name, state, polled) COMMENT 'the sweeper asks the least recently asked first'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- An order id is exact text too (a confirmation pays it as its txn_id).
ALTER TABLE paysys_order MODIFY order_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'compared exactly, as paysys_txn.txn_id';

-- Columns card payments added, for a table made before them.
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS state VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'booked' COMMENT 'booked (EasyPay), or a card order''s: waiting, paid, failed, expired, reversed, mismatch';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS charged DECIMAL(16,2) NULL COMMENT 'card orders: what the provider charges, amount plus commission';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS currency CHAR(3) CHARACTER SET ascii NOT NULL DEFAULT '';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS provider_ref VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'the provider''s id of the payment (LiqPay payment_id, Monobank invoiceId)';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS provider_status VARCHAR(32) NOT NULL DEFAULT '' COMMENT 'the provider''s last word, as sent';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS status_at DATETIME(3) NULL COMMENT 'when the provider says its last word was said: an older one never overwrites it';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS domain_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'ABillS domain the order was made in';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS valid_until DATETIME NULL COMMENT 'card orders: the sweeper asks about it until then';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS note VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'for the admin: an amount that differs, a reversal';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS updated DATETIME NULL;
CREATE INDEX IF NOT EXISTS state ON paysys_order (state, valid_until);
-- Columns the page's limits and the sweeper's fair order added, for a table made before them.
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS caller_ip VARCHAR(45) NOT NULL DEFAULT '' COMMENT 'card orders: who asked for it on the page (IPv6: its /64), for the page''s per-address limit';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS page_url VARCHAR(255) NULL COMMENT 'card orders: where the provider takes the subscriber (Monobank pageUrl), for a repeated request within minutes';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS polled DATETIME NULL COMMENT 'card orders: when the sweeper last asked the provider, least recently asked first';
ALTER TABLE paysys_order ADD COLUMN IF NOT EXISTS subscriber_id BIGINT UNSIGNED NULL COMMENT 'card orders: whom the account named when the order was made, the only subscriber its payment may credit';
CREATE INDEX IF NOT EXISTS caller_created ON paysys_order (caller_ip, created) COMMENT 'the page counts a caller''s orders of the last hour';
CREATE INDEX IF NOT EXISTS account_created ON paysys_order (account, created) COMMENT 'the page counts an account''s orders of the last hour, and finds one to reuse';
CREATE INDEX IF NOT EXISTS sweep ON paysys_order (system_name, state, polled) COMMENT 'the sweeper asks the least recently asked first';

-- The subscriber's page: each account tried that names nobody, by the caller's address
-- (IPv6: its /64), so that one caller cannot learn the ISP's accounts by trying them
-- ([page] misses_per_address an hour). Nothing of the account is kept. Rows older than a
-- day are deleted by the page itself.
CREATE TABLE IF NOT EXISTS paysys_page_miss (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  caller_ip  VARCHAR(45)     NOT NULL,
  created    DATETIME        NOT NULL,
  PRIMARY KEY (id),
  KEY caller_created (caller_ip, created),
  KEY created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Bank statements: every credit row of a [[statement.bank]]'s statement that was not
-- skipped, once per (bank, the bank's row id), with what became of it. The queue of rows
-- no rule matched (`paysys statement list`). The money's own guarantee is paysys_txn's
-- UNIQUE key: a row is credited as the payment (bank, txn_id).
CREATE TABLE IF NOT EXISTS paysys_statement (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  bank          VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'the [[statement.bank]] name, the payments system_name',
  row_id        VARCHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the bank''s id of the row, or one derived from its content',
  txn_id        VARCHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'paysys_txn.txn_id it is credited under',
  op_date       DATE            NOT NULL,
  amount        DECIMAL(16,2)   NOT NULL,
  currency      CHAR(3)         CHARACTER SET ascii NOT NULL DEFAULT '',
  purpose       VARCHAR(500)    NOT NULL DEFAULT '',
  payer_name    VARCHAR(255)    NOT NULL DEFAULT '',
  payer_code    VARCHAR(12)     CHARACTER SET ascii NOT NULL DEFAULT '',
  payer_account VARCHAR(34)     CHARACTER SET ascii NOT NULL DEFAULT '',
  state         VARCHAR(16)     CHARACTER SET ascii NOT NULL COMMENT 'credited, unmatched, ambiguous, settlement, ignored, by_hand',
  reason        VARCHAR(255)    NOT NULL DEFAULT '',
  account       VARCHAR(64)     NOT NULL DEFAULT '' COMMENT 'whom it was credited to',
  prv_txn       BIGINT UNSIGNED NULL,
  source        VARCHAR(255)    NOT NULL DEFAULT '' COMMENT 'the file or pull it first came from',
  admin         VARCHAR(64)     NOT NULL DEFAULT '' COMMENT 'who assigned or closed it by hand',
  created       DATETIME        NOT NULL,
  updated       DATETIME        NULL,
  PRIMARY KEY (id),
  UNIQUE KEY bank_row (bank, row_id),
  KEY state_date (state, op_date),
  KEY row_id (row_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- `paysys statement pull`: how far each [[statement.bank]] with an API (privat, monobank)
-- has been pulled. `pulled_to` (the paysys host's local time) moves forward only after
-- every row of a window up to it was imported; the next pull starts a day before it
-- (rows the bank books late). `last_error`: why the last pull stopped, NULL after one
-- that got through.
CREATE TABLE IF NOT EXISTS paysys_statement_pull (
  bank          VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'the [[statement.bank]] name',
  pulled_to     DATETIME        NULL COMMENT 'every row booked before this was imported',
  updated       DATETIME        NULL,
  last_error    VARCHAR(255)    NULL,
  PRIMARY KEY (bank)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The request history on NoDeny (`[log] database = true`; on ABillS the rows go to ABillS's
-- own paysys_requests instead): one row per request that reached a known payment system —
-- a terminal's check, pay, status or cancel, a card provider's callback, a statement
-- pull's call to the bank — and our answer. Secrets in the request (signatures, tokens,
-- card data) are masked before the row is written; callers no system admits get no row.
-- `paysys requests` reads it; `paysys requests --purge` deletes rows older than
-- [log] keep_days, a thousand at a time.
CREATE TABLE IF NOT EXISTS paysys_request (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at            DATETIME(3)     NOT NULL,
  system_name   VARCHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  caller_ip     VARCHAR(45)     NOT NULL DEFAULT '',
  http_method   VARCHAR(10)     NOT NULL DEFAULT '',
  command       VARCHAR(16)     NOT NULL DEFAULT '' COMMENT 'check, pay, status, cancel, callback, pull, …',
  txn_id        VARCHAR(64)     NOT NULL DEFAULT '' COMMENT 'as the caller sent it',
  account       VARCHAR(64)     NOT NULL DEFAULT '' COMMENT 'as the caller sent it',
  amount        DECIMAL(16,2)   NULL COMMENT 'the sum sent, NULL when it was not a sum',
  result        VARCHAR(16)     NOT NULL DEFAULT '' COMMENT 'the protocol''s result code as answered',
  status        TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '0 success, 1 refused or failed',
  prv_txn       BIGINT UNSIGNED NULL COMMENT 'the payment''s number, when the answer names one',
  subscriber_id BIGINT UNSIGNED NULL,
  domain_id     INT UNSIGNED    NOT NULL DEFAULT 0,
  error         VARCHAR(255)    NOT NULL DEFAULT '' COMMENT 'why, for a refusal or a failure',
  request       MEDIUMTEXT      NOT NULL COMMENT 'query string and body, secrets masked',
  response      MEDIUMTEXT      NOT NULL,
  PRIMARY KEY (id),
  KEY at (at),
  KEY system_txn (system_name, txn_id),
  KEY account (account)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
