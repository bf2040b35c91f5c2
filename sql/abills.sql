-- A small ABillS database for tests and the demo: the tables paysys reads and writes, with
-- ABillS's own column types, NULL-ness, defaults and keys. Not for production: your ABillS
-- already has these tables. Load it into an EMPTY database only: it drops the tables first.
--
-- DDL source: ABillS 1.20.00 (db/abills.sql and db/Paysys.sql of the sourceforge tarball),
-- the last release whose paysys_log.transaction_id is VARCHAR(24), payments.ext_id VARCHAR(28)
-- and users_pi.contract_id VARCHAR(10). Later releases only widen these columns (1.30: 36 and
-- 36, 1.40: 50 and 50, 1.50: contract_id VARCHAR(100)), so the narrow ones are the ones to test.
-- Tables are trimmed to the columns paysys reads or writes, plus every NOT NULL column without
-- a default (an INSERT must name those under a strict sql_mode). ABillS names no engine and
-- uses the server default, here InnoDB. Character set utf8 (3-byte) as in ABillS.
-- See docs/ABILLS.md for what ABillS itself writes into these tables.

DROP TABLE IF EXISTS `admins`;
CREATE TABLE `admins` (
  `id`          VARCHAR(16)          NOT NULL DEFAULT '',
  `name`        VARCHAR(50)          NOT NULL DEFAULT '',
  `regdate`     DATE                 NOT NULL,
  `password`    BLOB                 NOT NULL,
  `aid`         SMALLINT(6) UNSIGNED NOT NULL AUTO_INCREMENT,
  `disable`     TINYINT(1) UNSIGNED  NOT NULL DEFAULT '0',
  `web_options` TEXT                 NOT NULL,
  `comments`    TEXT                 NOT NULL,
  `domain_id`   SMALLINT(6) UNSIGNED NOT NULL DEFAULT '0',
  `pasport_date` DATE                NOT NULL,
  `birthday`    DATE                 NOT NULL,
  `start_work`  DATE                 NOT NULL,
  PRIMARY KEY (`aid`),
  UNIQUE KEY `id` (`id`),
  KEY `domain_id` (`domain_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Admins list';

DROP TABLE IF EXISTS `domains`;
CREATE TABLE `domains` (
  `id`       SMALLINT(6) UNSIGNED NOT NULL AUTO_INCREMENT,
  `name`     VARCHAR(30)          NOT NULL DEFAULT '',
  `comments` TEXT,
  `created`  DATE                 NOT NULL,
  `state`    TINYINT(1) UNSIGNED  NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Domains List';

DROP TABLE IF EXISTS `users`;
CREATE TABLE `users` (
  `id`         VARCHAR(20)          NOT NULL DEFAULT '',
  `password`   BLOB                 NOT NULL,
  `uid`        INT(11) UNSIGNED     NOT NULL AUTO_INCREMENT,
  `gid`        SMALLINT(6) UNSIGNED NOT NULL DEFAULT '0',
  `disable`    TINYINT(2) UNSIGNED  NOT NULL DEFAULT '0',
  `company_id` INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `bill_id`    INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `domain_id`  SMALLINT(6) UNSIGNED NOT NULL DEFAULT 0,
  `deleted`    TINYINT(1) UNSIGNED  NOT NULL DEFAULT '0',
  PRIMARY KEY (`uid`),
  UNIQUE KEY `id` (`domain_id`, `id`),
  KEY `bill_id` (`bill_id`),
  KEY `gid` (`gid`),
  KEY `company_id` (`company_id`),
  KEY `deleted` (`deleted`),
  KEY `login` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Users list';

DROP TABLE IF EXISTS `users_pi`;
CREATE TABLE `users_pi` (
  `uid`         INT(11) UNSIGNED NOT NULL DEFAULT 0,
  `fio`         VARCHAR(120)     NOT NULL DEFAULT '',
  `fio2`        VARCHAR(40)      NOT NULL DEFAULT '',
  `fio3`        VARCHAR(40)      NOT NULL DEFAULT '',
  `comments`    TEXT             NOT NULL,
  `contract_id` VARCHAR(10)      NOT NULL DEFAULT '',
  `reg_address` TEXT             NOT NULL,
  PRIMARY KEY (`uid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Users personal info';

DROP TABLE IF EXISTS `bills`;
CREATE TABLE `bills` (
  `id`           INT(11) UNSIGNED NOT NULL AUTO_INCREMENT,
  `deposit`      DOUBLE(15, 6)    NOT NULL DEFAULT '0.000000',
  `uid`          INT(11) UNSIGNED NOT NULL DEFAULT '0',
  `company_id`   INT(11) UNSIGNED NOT NULL DEFAULT '0',
  `registration` DATE             NOT NULL,
  PRIMARY KEY (`id`),
  KEY `uid` (`uid`, `company_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Users deposits';

DROP TABLE IF EXISTS `companies`;
CREATE TABLE `companies` (
  `id`          INT(11) UNSIGNED     NOT NULL AUTO_INCREMENT,
  `name`        VARCHAR(100)         NOT NULL DEFAULT '',
  `bill_id`     INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `contract_id` VARCHAR(10)          NOT NULL DEFAULT '',
  `domain_id`   SMALLINT(6) UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `bill_id` (`bill_id`),
  UNIQUE KEY `name` (`domain_id`, `name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Companies';

DROP TABLE IF EXISTS `groups`;
CREATE TABLE `groups` (
  `gid`            SMALLINT(4) UNSIGNED NOT NULL DEFAULT '0',
  `name`           VARCHAR(60)          NOT NULL DEFAULT '',
  `domain_id`      SMALLINT(6) UNSIGNED NOT NULL DEFAULT 0,
  `disable_paysys` TINYINT(1) UNSIGNED  NOT NULL DEFAULT 0,
  PRIMARY KEY (`gid`),
  UNIQUE KEY `name` (`domain_id`, `name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Users group';

-- payments.ext_id has a plain KEY, not a UNIQUE one: ABillS keeps it unique only by a
-- SELECT ... LOCK IN SHARE MODE before the INSERT. `date` and `reg_date` are TIMESTAMPs
-- (stored in UTC, shown in the session time zone).
DROP TABLE IF EXISTS `payments`;
CREATE TABLE `payments` (
  `date`           TIMESTAMP            NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `sum`            DOUBLE(10, 2)        NOT NULL DEFAULT '0.00',
  `dsc`            VARCHAR(80)          NOT NULL DEFAULT '',
  `ip`             INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `last_deposit`   DOUBLE(15, 6)        NOT NULL DEFAULT '0.000000',
  `uid`            INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `aid`            SMALLINT(6) UNSIGNED NOT NULL DEFAULT '0',
  `id`             INT(11) UNSIGNED     NOT NULL AUTO_INCREMENT,
  `method`         TINYINT(4) UNSIGNED  NOT NULL DEFAULT '0',
  `ext_id`         VARCHAR(28)          NOT NULL DEFAULT '',
  `bill_id`        INT(11) UNSIGNED     NOT NULL DEFAULT '0',
  `inner_describe` VARCHAR(80)          NOT NULL DEFAULT '',
  `amount`         DOUBLE(10, 2)        NOT NULL DEFAULT '0.00' COMMENT 'Sum in currency',
  `currency`       SMALLINT UNSIGNED    NOT NULL DEFAULT 0,
  `reg_date`       TIMESTAMP            NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `date` (`date`),
  KEY `uid` (`uid`),
  KEY `aid` (`aid`),
  KEY `ext_id` (`ext_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Payments log';

-- Every charge to a bill (monthly fees, services): deposit = last_deposit - sum. paysys
-- never writes here; `paysys audit` reads it to follow a bill's deposit from one recorded
-- change to the next. `sum` has four decimals in ABillS.
DROP TABLE IF EXISTS `fees`;
CREATE TABLE `fees` (
  `date`           TIMESTAMP             NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `sum`            DOUBLE(12, 4)         NOT NULL DEFAULT '0.00',
  `dsc`            VARCHAR(80)           NOT NULL DEFAULT '',
  `ip`             INT(11) UNSIGNED      NOT NULL DEFAULT '0',
  `last_deposit`   DOUBLE(15, 6)         NOT NULL DEFAULT '0.000000',
  `uid`            INT(11) UNSIGNED      NOT NULL DEFAULT '0',
  `aid`            SMALLINT(6) UNSIGNED  NOT NULL DEFAULT '0',
  `id`             INT(11) UNSIGNED      NOT NULL AUTO_INCREMENT,
  `bill_id`        INT(11) UNSIGNED      NOT NULL DEFAULT '0',
  `vat`            DOUBLE(5, 2) UNSIGNED NOT NULL DEFAULT '0.00',
  `inner_describe` VARCHAR(80)           NOT NULL DEFAULT '',
  `method`         TINYINT(4) UNSIGNED   NOT NULL DEFAULT '0',
  `reg_date`       TIMESTAMP             NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `date` (`date`),
  KEY `uid` (`uid`),
  KEY `aid` (`aid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Fees list';

-- info and code: NOT NULL without a default. A strict-mode server refuses an INSERT that
-- leaves them out (ABillS gets away with it only because it connects with
-- sql_mode='NO_ENGINE_SUBSTITUTION').
DROP TABLE IF EXISTS `paysys_log`;
CREATE TABLE `paysys_log` (
  `id`             INT(11) UNSIGNED       NOT NULL AUTO_INCREMENT,
  `system_id`      TINYINT(4) UNSIGNED    NOT NULL DEFAULT '0',
  `datetime`       DATETIME               NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `sum`            DOUBLE(10, 2) UNSIGNED NOT NULL DEFAULT '0.00',
  `commission`     DOUBLE(10, 2) UNSIGNED NOT NULL DEFAULT '0.00',
  `uid`            INT(11) UNSIGNED       NOT NULL DEFAULT '0',
  `transaction_id` VARCHAR(24)            NOT NULL DEFAULT '',
  `info`           TEXT                   NOT NULL,
  `ip`             INT(11) UNSIGNED       NOT NULL DEFAULT '0',
  `code`           BLOB                   NOT NULL,
  `paysys_ip`      INT(11) UNSIGNED       NOT NULL DEFAULT '0',
  `domain_id`      SMALLINT(6) UNSIGNED   NOT NULL DEFAULT '0',
  `status`         TINYINT(2) UNSIGNED    NOT NULL DEFAULT '0',
  `user_info`      VARCHAR(120)                    DEFAULT NULL,
  `merchant_id`    TINYINT UNSIGNED       NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `uid` (`uid`),
  KEY `system_id` (`system_id`),
  UNIQUE KEY `ps_transaction_id` (`domain_id`, `transaction_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Paysys log';

DROP TABLE IF EXISTS `paysys_connect`;
CREATE TABLE `paysys_connect` (
  `id`             TINYINT(4) UNSIGNED NOT NULL AUTO_INCREMENT,
  `paysys_id`      TINYINT UNSIGNED    NOT NULL DEFAULT 0,
  `name`           VARCHAR(40)         NOT NULL DEFAULT '',
  `module`         VARCHAR(40)         NOT NULL DEFAULT '',
  `status`         TINYINT UNSIGNED    NOT NULL DEFAULT 0,
  `paysys_ip`      TEXT                NOT NULL,
  `payment_method` TINYINT(4) UNSIGNED NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `paysys_id` (`paysys_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Paysys connected systems';

-- The request history ABillS's script writes with $conf{PAYSYS_LOG} (1.20's DDL whole: every
-- column but request and response has a default; transaction_id is paysys_log.id, NULL
-- allowed in 1.20, NOT NULL DEFAULT 0 from 1.30). paysys writes it with [log] database.
DROP TABLE IF EXISTS `paysys_requests`;
CREATE TABLE `paysys_requests` (
  `id`             INT(11) UNSIGNED       NOT NULL AUTO_INCREMENT,
  `system_id`      TINYINT(4) UNSIGNED    NOT NULL DEFAULT '0',
  `datetime`       DATETIME               NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `uid`            INT(11) UNSIGNED       NOT NULL DEFAULT '0',
  `request`        TEXT                   NOT NULL,
  `response`       TEXT                   NOT NULL,
  `transaction_id` INT(11) UNSIGNED,
  `http_method`    VARCHAR(10)            NOT NULL DEFAULT '',
  `paysys_ip`      INT(11) UNSIGNED       NOT NULL DEFAULT '0',
  `error`          VARCHAR(64)            NOT NULL DEFAULT '',
  `status`         SMALLINT(2) UNSIGNED   NOT NULL DEFAULT '0',
  `request_type`   TINYINT(2) UNSIGNED    NOT NULL DEFAULT '0',
  `sum`            DOUBLE(10, 2) UNSIGNED NOT NULL DEFAULT '0.00',
  PRIMARY KEY (`id`),
  KEY `paysys_id` (`system_id`),
  KEY `uid` (`uid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='Paysys access log';

-- Fixture rows ---------------------------------------------------------------------------

-- aid 2 is the admin paysys_check.cgi runs as ($conf{SYSTEM_ADMIN_ID}=2 in ABillS's config).
INSERT INTO `admins` (`id`, `name`, `regdate`, `password`, `aid`, `web_options`, `comments`,
  `pasport_date`, `birthday`, `start_work`) VALUES
  ('abills', 'abills',      '2020-01-01', '', 1, '', '', '2001-01-01', '2001-01-01', '2020-01-01'),
  ('system', 'System user', '2020-01-01', '', 2, '', '', '2001-01-01', '2001-01-01', '2020-01-01');

-- Domain 0 is the default domain and has no row. Domain 2 is a reseller (Multidoms).
INSERT INTO `domains` (`id`, `name`, `comments`, `created`, `state`) VALUES
  (2, 'reseller2', '', '2020-01-01', 0);

INSERT INTO `groups` (`gid`, `name`, `domain_id`, `disable_paysys`) VALUES
  (1, 'Main', 0, 0),
  (2, 'Paysys off', 0, 1),
  (3, 'Main', 2, 0);

INSERT INTO `companies` (`id`, `name`, `bill_id`, `contract_id`, `domain_id`) VALUES
  (1, 'ООО Ромашка', 6, 'K-0001', 0);

-- uid 1 test1: the ordinary subscriber. uid 2 disabled, uid 3 deleted, uid 4 in a group with
-- disable_paysys=1, uid 5 in company 1 (its own bill 5 exists but ABillS credits the company
-- bill 6), uid 6 and 7: logins a%b and a1b (a LIKE 'a%b' would find both), uid 8: a login of
-- digits for PAYSYS_ACCOUNT_EXPR tests. uid 10: domain 2, same login test1 as uid 1.
INSERT INTO `users` (`id`, `password`, `uid`, `gid`, `disable`, `company_id`, `bill_id`,
  `domain_id`, `deleted`) VALUES
  ('test1',    '', 1,  1, 0, 0, 1,  0, 0),
  ('test2',    '', 2,  1, 1, 0, 2,  0, 0),
  ('test3',    '', 3,  1, 0, 0, 3,  0, 1),
  ('test4',    '', 4,  2, 0, 0, 4,  0, 0),
  ('test5',    '', 5,  1, 0, 1, 5,  0, 0),
  ('a%b',      '', 6,  1, 0, 0, 7,  0, 0),
  ('a1b',      '', 7,  1, 0, 0, 8,  0, 0),
  ('00012345', '', 8,  0, 0, 0, 9,  0, 0),
  ('test1',    '', 10, 3, 0, 0, 10, 2, 0);

INSERT INTO `users_pi` (`uid`, `fio`, `fio2`, `fio3`, `comments`, `contract_id`, `reg_address`) VALUES
  (1,  'Иванов Иван Иванович', '', '', '', 'C-0001', ''),
  (2,  'Отключённый Абонент', '', '', '', 'C-0002', ''),
  (3,  'Удалённый Абонент', '', '', '', 'C-0003', ''),
  (4,  'Без Платежей', '', '', '', 'C-0004', ''),
  (5,  'Сидоров', 'Сидор', 'Сидорович', '', 'C-0005', ''),
  (6,  'Шаблон Процент', '', '', '', 'C-0006', ''),
  (7,  'Шаблон Цифра', '', '', '', 'C-0007', ''),
  (8,  'Цифровой Логин', '', '', '', 'C-0008', ''),
  (10, 'Петров Пётр Петрович', '', '', '', 'C-2001', '');

-- Bill 1: 12.50 after the OSMP pay of 100.00 below (it was -87.50 before it).
INSERT INTO `bills` (`id`, `deposit`, `uid`, `company_id`, `registration`) VALUES
  (1,  12.50,  1,  0, '2024-01-01'),
  (2,  0.00,   2,  0, '2024-01-01'),
  (3,  5.00,   3,  0, '2024-01-01'),
  (4,  1.00,   4,  0, '2024-01-01'),
  (5,  3.00,   5,  0, '2024-01-01'),
  (6,  100.00, 0,  1, '2024-01-01'),
  (7,  0.00,   6,  0, '2024-01-01'),
  (8,  0.00,   7,  0, '2024-01-01'),
  (9,  0.00,   8,  0, '2024-01-01'),
  (10, 40.00,  10, 0, '2024-01-01');

-- paysys_ip: comma-separated, one optional space after a comma, address or address/prefix.
-- payment_method 10: a payments_type the ISP created for OSMP (payments_type is not here).
INSERT INTO `paysys_connect` (`id`, `paysys_id`, `name`, `module`, `status`, `paysys_ip`,
  `payment_method`) VALUES
  (1, 44, 'Osmp',    'Osmp.pm',    1, '192.0.2.10, 192.0.2.11', 10),
  (2, 62, 'Easypay', 'Easypay.pm', 0, '203.0.113.5', 0);

-- What ABillS's Osmp.pm wrote for command=pay&txn_id=777&account=test1&sum=100.00 from
-- 192.0.2.10 (PAYSYS_OSMP_ACCOUNT_KEY=LOGIN) before paysys took over: payments.ext_id and
-- paysys_log.transaction_id "OSM:777", status 2, info = the request's parameters.
INSERT INTO `payments` (`date`, `sum`, `dsc`, `ip`, `last_deposit`, `uid`, `aid`, `id`, `method`,
  `ext_id`, `bill_id`, `inner_describe`, `amount`, `currency`, `reg_date`) VALUES
  ('2024-05-01 10:00:00', 100.00, 'OSMP Payments', INET_ATON('192.0.2.10'), -87.500000, 1, 2, 1,
   10, 'OSM:777', 1, '', 100.00, 0, '2024-05-01 10:00:00');

INSERT INTO `paysys_log` (`id`, `system_id`, `datetime`, `sum`, `commission`, `uid`,
  `transaction_id`, `info`, `ip`, `code`, `paysys_ip`, `domain_id`, `status`, `user_info`,
  `merchant_id`) VALUES
  (1, 44, '2024-05-01 10:00:00', 100.00, 0.00, 1, 'OSM:777',
   'account, test1\ncommand, pay\nsum, 100.00\ntxn_date, 20240501100000\ntxn_id, 777\n',
   0, '', INET_ATON('192.0.2.10'), 0, 2, NULL, 0);
