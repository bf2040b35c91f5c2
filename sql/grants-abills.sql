-- The least a paysys database user needs under ABillS. Run as the DB admin after
-- sql/paysys.sql (loaded into the ABillS database). Replace the password change-me (both
-- places), and the database name `abills` if yours differs.
--
-- Which host. MariaDB knows a user by where it sees the connection come from:
--   * over the socket (url "mysql://paysys:...@localhost/abills?socket=/run/mysqld/mysqld.sock")
--     that is always 'localhost';
--   * over TCP to 127.0.0.1 (INSTALL's url "mysql://paysys:...@127.0.0.1:3306/abills") it is
--     '127.0.0.1' on a server with skip-name-resolve (a common setting: no DNS lookup per
--     connection), and 'localhost' only on a server that resolves addresses to names. On
--     the first a 'paysys'@'localhost' alone is refused: "Access denied for user
--     'paysys'@'127.0.0.1'" (1045, or 1130 where no account names 127.0.0.1).
-- So the user is made for both hosts, with one password and the same grants: either url
-- works whether the server resolves names or not. The password, not the Unix user, is
-- what admits it: the web server's www-data logs in as well as root does. For a database
-- on another machine write instead the web server's address as that server sees it, an IP
-- address (with skip-name-resolve a name never matches), e.g. 'paysys'@'192.0.2.5', or
-- 'paysys'@'192.0.2.%' for several web nodes (INSTALL, section 12).
CREATE USER IF NOT EXISTS 'paysys'@'localhost' IDENTIFIED BY 'change-me',
                          'paysys'@'127.0.0.1' IDENTIFIED BY 'change-me';
-- Find subscribers: login, contract number, name, group, company.
GRANT SELECT ON `abills`.`users` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
GRANT SELECT ON `abills`.`users_pi` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
GRANT SELECT ON `abills`.`groups` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
GRANT SELECT ON `abills`.`companies` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Raise (and, on cancel, lower) the deposit of the bill paid into.
GRANT SELECT, UPDATE (deposit) ON `abills`.`bills` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The payment row; a cancel removes it, as ABillS's own cancel does.
GRANT SELECT, INSERT, DELETE ON `abills`.`payments` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The payment system's log row; a cancel marks it (status 3), a card order's row is
-- written when the subscriber leaves for the provider and completed by the payment.
GRANT SELECT, INSERT, UPDATE (status, datetime, sum, uid, info, paysys_ip) ON `abills`.`paysys_log` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The systems set up in ABillS's web interface, for `paysys import-abills`.
GRANT SELECT ON `abills`.`paysys_connect` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Read only, by `paysys audit`: the charges, to follow a bill's deposit.
GRANT SELECT ON `abills`.`fees` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Our own exactly-once table.
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_txn` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Refused pays (one row each), and `paysys report`.
GRANT SELECT, INSERT ON `abills`.`paysys_refusal` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_order` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The subscriber's page: accounts tried that name nobody, by caller (deleted after a day).
GRANT SELECT, INSERT, DELETE ON `abills`.`paysys_page_miss` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Bank statements' rows and their queue (paysys statement).
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_statement` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- How far each bank's statement was pulled (paysys statement pull).
GRANT SELECT, INSERT, UPDATE ON `abills`.`paysys_statement_pull` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The request history ([log] database = true): a row per request, and `paysys requests
-- --purge` deleting old ones. ABillS's own table (ABillS 0.94 and later).
GRANT SELECT, INSERT, DELETE ON `abills`.`paysys_requests` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Only with `procedure = true` in [database], once sql/abills-pay.sql is loaded (a grant
-- names a procedure that exists): its one-CALL pay, which runs with these grants.
-- GRANT EXECUTE ON PROCEDURE `abills`.`paysys_abills_pay_1` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
