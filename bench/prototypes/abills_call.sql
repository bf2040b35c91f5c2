-- A measurement, not the product: ABillS's pay as one stored procedure, for
-- bench/prototypes/abills_call.py. It runs paysys's statements of a plain new pay (our
-- row, the subscriber's lookup, the paysys_log row, the bill, the payments row, our row
-- completed with the look for other rows of the txn) in one CALL, and handles nothing
-- else: no duplicate key, no refusal, no other account key, no fallback. A real one would
-- roll back anything but the plain case and hand it to the ledger's long way, as the
-- confirmations' first statement does. The texts are utf8mb3, as ABillS's columns are: a
-- utf8mb4 parameter would make the server convert every row of payments.ext_id instead
-- of using its key.
DROP PROCEDURE IF EXISTS paysys_pay_abills;
DELIMITER //
CREATE PROCEDURE paysys_pay_abills(IN p_system VARCHAR(32), IN p_txn VARCHAR(64), IN p_account VARCHAR(64) CHARACTER SET utf8mb3, IN p_sum VARCHAR(20), IN p_text VARCHAR(64) CHARACTER SET utf8mb3, IN p_domain INT UNSIGNED)
BEGIN
  DECLARE v_row BIGINT UNSIGNED; DECLARE v_uid BIGINT UNSIGNED; DECLARE v_bill BIGINT UNSIGNED;
  DECLARE v_log BIGINT UNSIGNED; DECLARE v_pay BIGINT UNSIGNED; DECLARE v_disable INT; DECLARE v_dp INT;
  START TRANSACTION;
  INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created, caller_ip, domain_id)
    VALUES (p_system, p_txn, p_account, 0, CAST(p_sum AS DECIMAL(16,2)), NOW(), NOW(), '127.0.0.1', p_domain);
  SET v_row = LAST_INSERT_ID();
  SELECT u.uid, IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id), u.disable, IFNULL(g.disable_paysys, 0)
    INTO v_uid, v_bill, v_disable, v_dp
    FROM users u LEFT JOIN users_pi pi ON pi.uid = u.uid LEFT JOIN `groups` g ON g.gid = u.gid
    LEFT JOIN companies c ON c.id = u.company_id LEFT JOIN bills b ON b.id = u.bill_id LEFT JOIN bills cb ON cb.id = c.bill_id
    WHERE u.deleted = 0 AND u.domain_id = p_domain AND u.id = p_account LIMIT 1;
  INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status)
    VALUES (44, NOW(), CAST(p_sum AS DECIMAL(16,2)), 0, v_uid, p_text, 'txn_id, 1', 0, '', 2130706433, p_domain, 2);
  SET v_log = LAST_INSERT_ID();
  UPDATE bills SET deposit = (@paysys_deposit := CAST(deposit AS DECIMAL(24,6))) + CAST(p_sum AS DECIMAL(16,2)) WHERE id = v_bill;
  INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, inner_describe, amount, currency, reg_date)
    VALUES (NOW(), CAST(p_sum AS DECIMAL(16,2)), 'OSMP Payments', 2130706433, CAST(@paysys_deposit AS DECIMAL(24,6)), v_uid, 2, 2, p_text, v_bill, '', CAST(p_sum AS DECIMAL(16,2)), 0, NOW());
  SET v_pay = LAST_INSERT_ID();
  UPDATE paysys_txn SET subscriber_id = v_uid, payment_ref = v_pay, prv_txn = v_log WHERE id = v_row
    AND NOT EXISTS (SELECT 1 FROM payments WHERE ext_id IN (p_text) AND id <> v_pay)
    AND NOT EXISTS (SELECT 1 FROM paysys_log WHERE domain_id IN (p_domain, 0) AND transaction_id IN (p_text) AND id <> v_log);
  COMMIT;
  SELECT v_log;
END//
DELIMITER ;
