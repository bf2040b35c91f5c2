-- ABillS's pay in one round trip: an optional stored procedure for paysys_check.cgi on
-- ABillS (MariaDB 10.3 or later). Load it into the ABillS database after sql/paysys.sql, as
-- the DB admin (it needs CREATE ROUTINE), grant paysys's user EXECUTE on it
-- (sql/grants-abills.sql does), and set `procedure = true` in [database]:
--
--     mysql abills < sql/abills-pay.sql
--
-- What it does. A terminal's plain new pay (the account names one payable subscriber by a
-- uid or a login, the txn's text is short enough to be written whole, no row of the txn in
-- ABillS's tables) runs the same statements paysys would send one by one, in one CALL: our
-- paysys_txn row, the subscriber's lookup, the paysys_log row, the bill, the payments row,
-- and our row completed where no other row of the txn exists (the look last, under the
-- same shared locks). Anything else is rolled back inside it and answered with a code, and
-- paysys then makes the pay its usual way, which knows every other case. A pay is the same
-- rows either way; the procedure saves the round trips, and a bill's row lock is held for
-- the server's time alone, not across the client's.
--
-- It runs with the caller's grants (SQL SECURITY INVOKER): paysys's user needs nothing on
-- ABillS's tables it does not already have. The texts it compares with ABillS's columns
-- take those columns' own types (TYPE OF), so that the server uses their keys whatever
-- character set the install's tables have.
--
-- The name carries a version: a paysys that needs a changed procedure calls a new name,
-- and finds this one missing until the file is loaded again (it then pays its usual way,
-- and `paysys check-config` says so).
--
-- The answer is one row: code, our row's id, the subscriber, payments.id, paysys_log.id.
--   code 0: paid and committed;
--   code 1: our row of the txn exists (a repeat): rolled back, answered from the stored row;
--   code 2: not the plain case: rolled back, made the usual way.
-- An error is raised as the server raised it, after the transaction is rolled back (a
-- wait for paysys_txn's AUTO-INC lock that ran out of lock_timeout as the lock wait
-- timeout, 1205, it is). One raised once COMMIT was sent (on a Galera node a COMMIT can
-- fail here and commit on the other nodes) is raised with SQLSTATE 08007, "transaction
-- resolution unknown" (error 1644, its message kept): paysys answers it as a COMMIT
-- without an answer. A deadlock at COMMIT (a cluster's certification conflict) rolled it back and
-- stays a deadlock, tried again.
--
-- CREATE OR REPLACE keeps the EXECUTE grant paysys's user has from an earlier load (a DROP
-- would revoke it). The procedure keeps the sql_mode of the session that loads it: load it
-- with the server's default, which paysys's own sessions have, so that its statements
-- behave as paysys's do (texts ABillS's columns would change are left to paysys either way).

DELIMITER //
CREATE OR REPLACE PROCEDURE paysys_abills_pay_1(
  IN p_system      VARCHAR(32)  CHARACTER SET utf8mb4,
  IN p_txn         VARCHAR(64)  CHARACTER SET utf8mb4,
  IN p_account     VARCHAR(64)  CHARACTER SET utf8mb4,
  IN p_subscriber  BIGINT UNSIGNED,
  IN p_sum         VARCHAR(24)  CHARACTER SET ascii,
  IN p_txn_date    VARCHAR(24)  CHARACTER SET ascii,
  IN p_caller      VARCHAR(45)  CHARACTER SET ascii,
  IN p_domain      INT UNSIGNED,
  IN p_uid         BIGINT UNSIGNED,
  IN p_login       VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_refused     VARCHAR(255) CHARACTER SET ascii,
  IN p_abills_id   INT UNSIGNED,
  IN p_now         VARCHAR(24)  CHARACTER SET ascii,
  IN p_info        TEXT         CHARACTER SET utf8mb4,
  IN p_ip          INT UNSIGNED,
  IN p_text        VARCHAR(64)  CHARACTER SET utf8mb4,
  IN p_dsc         VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_aid         INT UNSIGNED,
  IN p_method      INT UNSIGNED)
  MODIFIES SQL DATA
  SQL SECURITY INVOKER
  COMMENT 'paysys: an ABillS terminal pay in one round trip (sql/abills-pay.sql)'
pay: BEGIN
  DECLARE v_step TINYINT DEFAULT 0;
  DECLARE v_row BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_found INT DEFAULT 0;
  DECLARE v_uid BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_disable INT DEFAULT 0;
  DECLARE v_barred INT DEFAULT 0;
  DECLARE v_bill BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_log BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_pay BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_lossy TINYINT DEFAULT 0;
  DECLARE v_ext_id TYPE OF payments.ext_id;
  DECLARE v_log_id TYPE OF paysys_log.transaction_id;
  DECLARE v_login TYPE OF users.id;
  -- A duplicate key: of our row, a repeat (1); of ABillS's rows (written beside us by
  -- another writer), not the plain case (2).
  DECLARE EXIT HANDLER FOR 1062
  BEGIN
    ROLLBACK;
    SELECT IF(v_step = 1, 1, 2), 0, 0, 0, 0;
  END;
  -- A deadlock victim (here or at COMMIT): rolled back whole, tried again by paysys.
  DECLARE EXIT HANDLER FOR 1213
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;
  -- 1467 with the transaction still open: a wait for the AUTO-INC lock that ran out, not a
  -- deadlock (which ends the transaction).
  DECLARE EXIT HANDLER FOR 1467
  BEGIN
    IF @@in_transaction = 1 THEN
      ROLLBACK;
      RESIGNAL SET MYSQL_ERRNO = 1205;
    END IF;
    RESIGNAL;
  END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    IF v_step = 9 THEN
      RESIGNAL SQLSTATE '08007';
    END IF;
    RESIGNAL;
  END;

  -- The texts in the columns' own types: a text the column would change (cut, or a
  -- character its character set lacks) is not the plain case.
  BEGIN
    DECLARE CONTINUE HANDLER FOR 1265, 1366, 1406 SET v_lossy = 1;
    SET v_ext_id = p_text, v_log_id = p_text, v_login = p_login;
  END;
  IF v_lossy = 1
     OR BINARY CONVERT(v_ext_id USING utf8mb4) <> BINARY p_text
     OR BINARY CONVERT(v_log_id USING utf8mb4) <> BINARY p_text
     OR (p_uid = 0 AND BINARY CONVERT(v_login USING utf8mb4) <> BINARY p_login) THEN
    SELECT 2, 0, 0, 0, 0;
    LEAVE pay;
  END IF;

  START TRANSACTION;
  SET v_step = 1;
  INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created, caller_ip, domain_id)
    VALUES (p_system, p_txn, p_account, p_subscriber, CAST(p_sum AS DECIMAL(16,2)), p_txn_date, NOW(), p_caller, p_domain);
  SET v_row = LAST_INSERT_ID();
  SET v_step = 2;

  -- The subscriber, as paysys looks them up (a plain read): one, payable, with a bill.
  IF p_uid > 0 THEN
    SELECT COUNT(*), MIN(u.uid), MIN(u.disable), MIN(IFNULL(g.disable_paysys, 0)),
           MIN(IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id))
      INTO v_found, v_uid, v_disable, v_barred, v_bill
      FROM users u LEFT JOIN `groups` g ON g.gid = u.gid LEFT JOIN companies c ON c.id = u.company_id
      WHERE u.deleted = 0 AND u.domain_id = p_domain AND u.uid = p_uid;
  ELSE
    SELECT COUNT(*), MIN(u.uid), MIN(u.disable), MIN(IFNULL(g.disable_paysys, 0)),
           MIN(IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id))
      INTO v_found, v_uid, v_disable, v_barred, v_bill
      FROM users u LEFT JOIN `groups` g ON g.gid = u.gid LEFT JOIN companies c ON c.id = u.company_id
      WHERE u.deleted = 0 AND u.domain_id = p_domain AND u.id = v_login;
  END IF;
  IF v_found <> 1 OR v_barred <> 0 OR IFNULL(v_bill, 0) = 0
     OR (v_disable <> 0 AND (p_refused = '*' OR FIND_IN_SET(v_disable, p_refused) > 0)) THEN
    ROLLBACK;
    SELECT 2, 0, 0, 0, 0;
    LEAVE pay;
  END IF;

  INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status)
    VALUES (p_abills_id, p_now, CAST(p_sum AS DECIMAL(16,2)), 0, v_uid, v_log_id, p_info, 0, '', p_ip, p_domain, 2);
  SET v_log = LAST_INSERT_ID();
  -- The bill last, in one statement, its deposit before the payment read under its lock.
  UPDATE bills SET deposit = (@paysys_deposit := CAST(deposit AS DECIMAL(24,6))) + CAST(p_sum AS DECIMAL(16,2))
    WHERE id = v_bill;
  IF ROW_COUNT() <> 1 THEN
    ROLLBACK;
    SELECT 2, 0, 0, 0, 0;
    LEAVE pay;
  END IF;
  INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, inner_describe, amount, currency, reg_date)
    VALUES (p_now, CAST(p_sum AS DECIMAL(16,2)), p_dsc, p_ip, CAST(@paysys_deposit AS DECIMAL(24,6)), v_uid, p_aid, p_method,
            v_ext_id, v_bill, '', CAST(p_sum AS DECIMAL(16,2)), 0, NOW());
  SET v_pay = LAST_INSERT_ID();
  -- Our row completed where ABillS's tables hold no other row of the txn: read under the
  -- shared locks this statement takes, so that one committed meanwhile is seen and one
  -- being written is waited for (ABillS's own script, paying the same txn beside us).
  UPDATE paysys_txn SET subscriber_id = v_uid, payment_ref = v_pay, prv_txn = v_log
    WHERE id = v_row
      AND NOT EXISTS (SELECT 1 FROM payments WHERE ext_id = v_ext_id AND id <> v_pay)
      AND NOT EXISTS (SELECT 1 FROM paysys_log WHERE domain_id IN (p_domain, 0)
                      AND transaction_id = v_log_id AND id <> v_log);
  IF ROW_COUNT() <> 1 THEN
    ROLLBACK;
    SELECT 2, 0, 0, 0, 0;
    LEAVE pay;
  END IF;
  SET v_step = 9;
  COMMIT;
  SELECT 0, v_row, v_uid, v_pay, v_log;
END//
DELIMITER ;
