-- A small NoDeny database for tests and the demo: the columns paysys reads and writes, with
-- the types of a NoDeny install. Not for production: your NoDeny already has these tables.

CREATE TABLE IF NOT EXISTS users (
  id       INT UNSIGNED  NOT NULL AUTO_INCREMENT,
  mid      INT UNSIGNED  NOT NULL DEFAULT 0,
  name     VARCHAR(64)   NOT NULL DEFAULT '',
  fio      VARCHAR(128)  NOT NULL DEFAULT '',
  balance  DECIMAL(12,2) NOT NULL DEFAULT 0,
  state    ENUM('on','off') NOT NULL DEFAULT 'on',
  PRIMARY KEY (id),
  KEY mid (mid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS pays (
  id        INT UNSIGNED  NOT NULL AUTO_INCREMENT,
  mid       INT UNSIGNED  NOT NULL,
  cash      DECIMAL(12,2) NOT NULL,
  time      INT UNSIGNED  NOT NULL,
  admin_id  INT UNSIGNED  NOT NULL,
  admin_ip  INT UNSIGNED  NOT NULL,
  office    SMALLINT      NOT NULL,
  bonus     VARCHAR(1)    NOT NULL,
  reason    TEXT          NOT NULL,
  coment    TEXT          NOT NULL,
  type      TINYINT       NOT NULL,
  category  SMALLINT      NOT NULL,
  PRIMARY KEY (id),
  KEY mid (mid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Subscribers. Their payment codes: 3 -> 33, 5907 -> 59071, 1234 -> 12340.
INSERT IGNORE INTO users (id, mid, name, fio, balance) VALUES
  (3,    0, 'test',   'Тестовый Абонент',  0.00),
  (1234, 0, 'petrov', 'Петров Пётр',      15.50),
  (5907, 0, 'ivanov', 'Иванов Иван',     100.00),
  (5908, 5907, 'ivanov-alias', '',         0.00);
