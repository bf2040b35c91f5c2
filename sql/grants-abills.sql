-- The least a paysys database user needs under ABillS. Replace the password, and the
-- database name `abills` and the host 'localhost' if yours differ; run as the DB admin
-- after sql/paysys.sql (loaded into the ABillS database).
CREATE USER IF NOT EXISTS 'paysys'@'localhost' IDENTIFIED BY 'change-me';
-- Find subscribers: login, contract number, name, group, company.
GRANT SELECT ON `abills`.`users` TO 'paysys'@'localhost';
GRANT SELECT ON `abills`.`users_pi` TO 'paysys'@'localhost';
GRANT SELECT ON `abills`.`groups` TO 'paysys'@'localhost';
GRANT SELECT ON `abills`.`companies` TO 'paysys'@'localhost';
-- Raise (and, on cancel, lower) the deposit of the bill paid into.
GRANT SELECT, UPDATE (deposit) ON `abills`.`bills` TO 'paysys'@'localhost';
-- The payment row; a cancel removes it, as ABillS's own cancel does.
GRANT SELECT, INSERT, DELETE ON `abills`.`payments` TO 'paysys'@'localhost';
-- The payment system's log row; a cancel marks it (status 3).
GRANT SELECT, INSERT, UPDATE (status) ON `abills`.`paysys_log` TO 'paysys'@'localhost';
-- The systems set up in ABillS's web interface, for `paysys import-abills`.
GRANT SELECT ON `abills`.`paysys_connect` TO 'paysys'@'localhost';
-- Our own exactly-once table.
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_txn` TO 'paysys'@'localhost';
-- Refused pays (one row each), and `paysys report`.
GRANT SELECT, INSERT ON `abills`.`paysys_refusal` TO 'paysys'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_order` TO 'paysys'@'localhost';
