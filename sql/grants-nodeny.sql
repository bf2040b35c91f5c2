-- The least a paysys database user needs under NoDeny. Replace the password, and the
-- database name `nodeny` and the host 'localhost' if yours differ; run as the DB admin
-- after sql/paysys.sql.
CREATE USER IF NOT EXISTS 'paysys'@'localhost' IDENTIFIED BY 'change-me';
-- Find subscribers and raise their balance (nothing else in users is written).
GRANT SELECT, UPDATE (balance) ON `nodeny`.`users` TO 'paysys'@'localhost';
-- Write the payment row.
GRANT INSERT ON `nodeny`.`pays` TO 'paysys'@'localhost';
-- Our own exactly-once table.
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_txn` TO 'paysys'@'localhost';
-- Refused pays (one row each), and `paysys report`.
GRANT SELECT, INSERT ON `nodeny`.`paysys_refusal` TO 'paysys'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_order` TO 'paysys'@'localhost';
