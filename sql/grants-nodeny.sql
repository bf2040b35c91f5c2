-- The least a paysys database user needs under NoDeny. Run as the DB admin after
-- sql/paysys.sql. Replace the password change-me (both places), and the database name
-- `nodeny` if yours differs.
--
-- Which host. MariaDB knows a user by where it sees the connection come from:
--   * over the socket (url "mysql://paysys:...@localhost/nodeny?socket=/run/mysqld/mysqld.sock")
--     that is always 'localhost';
--   * over TCP to 127.0.0.1 (INSTALL's url "mysql://paysys:...@127.0.0.1:3306/nodeny") it is
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
-- Find subscribers and raise their balance (nothing else in users is written).
GRANT SELECT, UPDATE (balance) ON `nodeny`.`users` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Write the payment row (read by `paysys txn` and `paysys audit`); a cancel reverses it as
-- NoDeny's admin interface deletes one: reads and locks the row, keeps it as an event
-- (INSERT ... SELECT), deletes it (INSTALL, section 17).
GRANT SELECT, INSERT, DELETE ON `nodeny`.`pays` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Our own exactly-once table.
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_txn` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Refused pays (one row each), and `paysys report`.
GRANT SELECT, INSERT ON `nodeny`.`paysys_refusal` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_order` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The subscriber's page: accounts tried that name nobody, by caller (deleted after a day).
GRANT SELECT, INSERT, DELETE ON `nodeny`.`paysys_page_miss` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- Bank statements' rows and their queue (paysys statement).
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_statement` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- How far each bank's statement was pulled (paysys statement pull).
GRANT SELECT, INSERT, UPDATE ON `nodeny`.`paysys_statement_pull` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
-- The request history ([log] database = true): a row per request, and `paysys requests
-- --purge` deleting old ones.
GRANT SELECT, INSERT, DELETE ON `nodeny`.`paysys_request` TO 'paysys'@'localhost', 'paysys'@'127.0.0.1';
