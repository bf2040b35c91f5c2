//! `paysys statement`: bank statements through the real `paysys` executable against
//! MariaDB, on NoDeny and on ABillS 1.50's tables: every kind of row (credited, a debit, a
//! row not posted, another currency, a settlement, an unknown account, two subscribers
//! named), credited once whatever is imported again (the same file, the same day in
//! another export), `--dry-run`, and the queue (`list`, `assign`, `ignore`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::abills::{Abills, Ddl};
use common::TestDb;
use mysql::prelude::Queryable;

/// The rules every test's config has: a settlement by its purpose, then an account read
/// from the purpose ("о/р 59071", "ос. рах. 59071", "дог. № 59071").
const RULES: &str = r#"
[[statement.rule]]
settlement = true
purpose = '(?i)перерахування коштів, прийнятих від платників|принятые платежи'

[[statement.rule]]
purpose = '(?i)(?:о/р|ос\.?\s*рах\.?|особистий рахунок|дог\.)\s*№?\s*(?P<account>[0-9a-z]{3,12})'
"#;

const IBAN: &str = "UA213223130000026007233566001";

/// A 1C 1.03 file on our account `IBAN`, `docs` being (number, date, sum, payer, payer's
/// account, purpose, posted, credit): Windows-1251, CRLF, as client-banks save them.
type Doc<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    bool,
    bool,
);

fn onec(docs: &[Doc<'_>]) -> Vec<u8> {
    let mut text = format!(
        "1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\nОтправитель=Бухгалтерия\r\n\
         ДатаНачала=01.12.2026\r\nДатаКонца=05.12.2026\r\nРасчСчет={IBAN}\r\n"
    );
    for (number, date, sum, payer, payer_account, purpose, posted, credit) in docs {
        let (from, to) = if *credit {
            (*payer_account, IBAN)
        } else {
            (IBAN, *payer_account)
        };
        text.push_str(&format!(
            "СекцияДокумент=Платежное поручение\r\nНомер={number}\r\nДата={date}\r\nСумма={sum}\r\n\
             ПлательщикСчет={from}\r\nПлательщик={payer}\r\nПлательщикИНН=2345678901\r\n\
             ПолучательСчет={to}\r\nПолучатель=ТОВ Провайдер\r\nПолучательИНН=12345678\r\n"
        ));
        if *posted {
            let (key, date) = if *credit {
                ("ДатаПоступило", date)
            } else {
                ("ДатаСписано", date)
            };
            text.push_str(&format!("{key}={date}\r\n"));
        } else {
            text.push_str("ДатаПоступило=\r\n");
        }
        text.push_str(&format!(
            "НазначениеПлатежа={purpose}\r\nКонецДокумента\r\n"
        ));
    }
    text.push_str("КонецФайла\r\n");
    paysys::cp1251::encode(&text).expect("cp1251")
}

/// The statement every test imports, with `account` (a subscriber's) and `other` (another
/// subscriber's) in its purposes.
fn statement(account: &str, other: &str) -> Vec<u8> {
    onec(&[
        ("101", "03.12.2026", "100.00", "Петренко Петро Володимирович", "UA903052992990004149123456789",
         &format!("Плата за інтернет, о/р {account}, Петренко П.В."), true, true),
        ("102", "03.12.2026", "50.00", "Іваненко Іван", "UA903052992990004149123456780",
         "Сплата за Особистий рахунок 999999", true, true),
        ("103", "04.12.2026", "15400.00", "ТОВ ФК Платежі", "UA903052992990004149123456781",
         "Перерахування коштів, прийнятих від Платників за дог. № 15/3 згідно реєстру від 03.12.2026", true, true),
        ("104", "04.12.2026", "12.50", "АТ КБ ПриватБанк", "UA903052992990004149123456782",
         "Комісія банку за обслуговування рахунку", true, false),
        ("105", "04.12.2026", "30.00", "Сидоренко Сидір", "UA903052992990004149123456783",
         &format!("о/р {account} та о/р {other}"), true, true),
        ("106", "05.12.2026", "70.00", "Петренко Петро", "UA903052992990004149123456789",
         &format!("ос. рах. {account}"), false, true),
    ])
}

struct Site {
    nodeny: Option<(TestDb, common::Site)>,
    ab: Option<Abills>,
    base: PathBuf,
    abills: bool,
    /// The subscriber the statement names, and another one.
    account: &'static str,
    other: &'static str,
}

impl Site {
    fn nodeny() -> Site {
        let db = TestDb::new();
        let site = common::Site::new(&db.url, "");
        let base = site.base.clone();
        let s = Site {
            nodeny: Some((db, site)),
            ab: None,
            base,
            abills: false,
            account: "59071",
            other: "12340",
        };
        s.write_config("account = \"payment_code\"");
        s
    }

    fn abills() -> Site {
        let ab = Abills::on_ddl(Ddl::V1_50, "");
        let base = ab.site.base.clone();
        let s = Site {
            nodeny: None,
            ab: Some(ab),
            base,
            abills: true,
            account: "test1",
            other: "a1b",
        };
        s.write_config("account = \"login\"\nabills_id = 70\ntxn_prefix = \"BANK\"");
        s
    }

    fn db(&self) -> &TestDb {
        match (&self.nodeny, &self.ab) {
            (Some((db, _)), _) => db,
            (_, Some(ab)) => &ab.db,
            _ => unreachable!(),
        }
    }

    fn both() -> [Site; 2] {
        [Site::nodeny(), Site::abills()]
    }

    fn config(&self) -> PathBuf {
        self.base.join("etc/paysys.toml")
    }

    fn write_config(&self, bank_keys: &str) {
        let billing = if self.abills { "abills" } else { "nodeny" };
        std::fs::write(
            self.config(),
            format!(
                "[database]\nurl = \"{}\"\nbilling = \"{billing}\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n\n\
                 [[statement.bank]]\nname = \"privat_main\"\nbank = \"file\"\niban = \"{IBAN}\"\n{bank_keys}\n{RULES}",
                self.db().url
            ),
        )
        .unwrap();
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.base.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn paysys(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .arg("statement")
            .args(args)
            .arg("--config")
            .arg(self.config())
            .env_remove("PAYSYS_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn import(&self, path: &Path, extra: &[&str]) -> String {
        let mut args = vec!["import", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = self.paysys(&args);
        assert_eq!(code, Some(0), "{out}{err}");
        out
    }

    /// The subscriber's balance, to the kopeck.
    fn balance(&self, account: &str) -> String {
        if self.abills {
            let uid = if account == "test1" { 1 } else { 7 };
            let bill = if uid == 1 { 1 } else { 8 };
            let _ = uid;
            self.db()
                .conn()
                .exec_first::<String, _, _>(
                    "SELECT CAST(deposit AS DECIMAL(24,2)) FROM bills WHERE id = ?",
                    (bill,),
                )
                .unwrap()
                .unwrap()
        } else {
            let id: u64 = account[..account.len() - 1].parse().unwrap();
            self.db().balance(id)
        }
    }

    fn payments(&self) -> u64 {
        if self.abills {
            self.db().count("SELECT COUNT(*) FROM payments")
        } else {
            self.db().pays()
        }
    }

    fn name(&self) -> &'static str {
        if self.abills {
            "abills"
        } else {
            "nodeny"
        }
    }
}

#[test]
fn a_statement_is_credited_once_and_what_cannot_be_matched_waits() {
    for site in Site::both() {
        let who = site.name();
        let before = site.balance(site.account);
        let payments = site.payments();
        let file = site.file("december.txt", &statement(site.account, site.other));

        // A dry run decides and writes nothing.
        let dry = site.import(&file, &["--dry-run"]);
        assert!(
            dry.contains(&format!("would be credited to {}", site.account)),
            "{who}: {dry}"
        );
        assert!(dry.contains("dry run: nothing was written"), "{dry}");
        assert_eq!(site.payments(), payments);
        assert_eq!(site.db().count("SELECT COUNT(*) FROM paysys_statement"), 0);

        let out = site.import(&file, &[]);
        for expected in [
            format!("100.00 credited to {}", site.account),
            "50.00 unmatched: no subscriber: '999999'".to_string(),
            "15400.00 settlement (rule at paysys.toml:".to_string(),
            "12.50 skipped: a debit".to_string(),
            "30.00 ambiguous: names several subscribers".to_string(),
            "70.00 skipped: not posted by the bank yet".to_string(),
            "6 rows: 1 credited, 0 seen before, 1 settlements, 2 queued for the admin, 2 skipped"
                .to_string(),
        ] {
            assert!(out.contains(&expected), "{who}: {expected} in\n{out}");
        }
        assert_eq!(site.payments(), payments + 1, "{who}");
        let after = site.balance(site.account);
        assert_ne!(after, before, "{who}");

        // The same file again, and the same day as another program exports it (UTF-8,
        // LF, other header keys): nothing is credited twice.
        let again = site.import(&file, &[]);
        assert!(again.contains("2 seen before"), "{who}: {again}");
        assert!(again.contains("0 credited"), "{who}: {again}");
        let utf8 = String::from_utf8(
            paysys::cp1251::decode(&statement(site.account, site.other)).into_bytes(),
        )
        .unwrap()
        .replace("\r\n", "\n")
        .replace("Кодировка=Windows", "Кодировка=UTF-8")
        .replace("Отправитель=Бухгалтерия\n", "");
        let other_export = site.file("december-utf8.txt", utf8.as_bytes());
        let third = site.import(&other_export, &[]);
        assert!(third.contains("0 credited"), "{who}: {third}");
        assert_eq!(site.payments(), payments + 1, "{who}");
        assert_eq!(site.balance(site.account), after);

        // The queue: the unknown account and the two subscribers.
        let (code, list, err) = site.paysys(&["list"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            list.contains("unmatched") && list.contains("ambiguous"),
            "{list}"
        );
        assert!(list.contains("2 rows"), "{who}: {list}");
        let row_of = |needle: &str| -> String {
            list.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {list}"))
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        let unknown = row_of("50.00");
        let ambiguous = row_of("30.00");
        // The admin credits the unknown one to the other subscriber, once.
        let other_before = site.balance(site.other);
        let (code, out, err) = site.paysys(&["assign", &unknown, site.other]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(
            out.contains(&format!("credited to {}", site.other)),
            "{out}"
        );
        assert_ne!(site.balance(site.other), other_before);
        let (code, _, err) = site.paysys(&["assign", &unknown, site.other]);
        assert_eq!(code, Some(1));
        assert!(err.contains("not waiting"), "{err}");
        assert_eq!(site.payments(), payments + 2, "{who}");
        // The ambiguous one was paid by hand in the billing.
        let (code, out, err) = site.paysys(&[
            "ignore",
            &ambiguous,
            "--reason",
            "paid at the desk",
            "--by-hand",
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        let (_, list, _) = site.paysys(&["list"]);
        assert!(list.contains("0 rows"), "{list}");
        let (_, all, _) = site.paysys(&["list", "--all"]);
        assert!(
            all.contains("by_hand") && all.contains("credited") && all.contains("settlement"),
            "{all}"
        );
        let (_, settlements, _) = site.paysys(&["list", "--settlements"]);
        assert!(
            settlements.contains("15400.00") && settlements.contains("1 rows"),
            "{settlements}"
        );
        // Imported again after all that: still nothing more.
        let last = site.import(&file, &[]);
        assert!(last.contains("0 credited"), "{who}: {last}");
        assert_eq!(site.payments(), payments + 2, "{who}");

        if site.abills {
            // ABillS's own rows: the payment under "<prefix>:<row id>", its log row.
            let (ext, system): (String, u32) = site
                .db()
                .conn()
                .query_first(
                    "SELECT p.ext_id, l.system_id FROM payments p JOIN paysys_log l \
                     ON l.transaction_id = p.ext_id WHERE p.uid = 1 ORDER BY p.id DESC LIMIT 1",
                )
                .unwrap()
                .unwrap();
            assert!(ext.starts_with("BANK:1c:"), "{ext}");
            assert_eq!(system, 70);
        }
        // `paysys report` counts them like any system's payments.
        let report = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args([
                "report",
                "--from",
                "2026-12-01",
                "--to",
                "2026-12-31",
                "--by",
                "system",
                "--config",
            ])
            .arg(site.config())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&report.stdout).into_owned();
        assert!(report.contains("privat_main"), "{who}: {report}");
        // One log line per credit, cmd=statement.
        let log = std::fs::read_to_string(site.base.join("var/log/paysys_check.log")).unwrap();
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("cmd=statement") && l.contains("result=0"))
                .count(),
            2,
            "{who}: {log}"
        );
    }
}

/// PrivatBank's and Monobank's JSON and a CSV export through a preset, on ABillS: a
/// company paying from its own code (mapped in the config, and read from ABillS's own
/// fields: the company's edrpou, the subscriber's tax_number), a payer whose name must
/// match the subscriber's, another currency, another of our accounts.
#[test]
fn json_and_csv_statements_payer_codes_and_names_on_abills() {
    let ab = Abills::on_ddl(Ddl::V1_50, "");
    let base = ab.site.base.clone();
    let config = base.join("etc/paysys.toml");
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "{url}"
billing = "abills"

[log]
file = "var/log/paysys_check.log"

[[statement.bank]]
name = "privat"
bank = "file"
iban = "{IBAN}"
account = "login"
abills_id = 70
txn_prefix = "PB"

[[statement.bank]]
name = "mono"
bank = "file"
account = "login"
abills_id = 71
txn_prefix = "MB"

[[statement.bank]]
name = "oschad"
bank = "file"
account = "login"
abills_id = 72
txn_prefix = "OB"

[[statement.rule]]
payer_code = "41234567"
account = "a1b"

[[statement.rule]]
payer_code = "billing"

[[statement.rule]]
purpose = '(?i)о/р\s*(?P<account>[a-z0-9]+)'
payer_name = true

[[statement.csv]]
name = "oschad"
delimiter = ";"
encoding = "utf-8"
date = "ДАТА"
number = "НОМЕР"
purpose = "ПРИЗНАЧЕННЯ"
payer_code = "КОД ІДЕНТ."
payer_name = "КОНТРАГЕНТ"
payer_account = "РАХУНОК КОНТРАГЕНТА"
debit = "СУМА ДЕБЕТ"
credit = "СУМА КРЕДИТ"
decimal_comma = true
"#,
            url = ab.db.url
        ),
    )
    .unwrap();
    {
        let mut conn = ab.db.conn();
        conn.query_drop("UPDATE companies SET edrpou = '31234567' WHERE id = 1")
            .unwrap();
        conn.query_drop("UPDATE users_pi SET tax_number = '3012345678' WHERE uid = 1")
            .unwrap();
    }
    let deposit = |bill: u64| -> String {
        ab.db
            .conn()
            .exec_first::<String, _, _>(
                "SELECT CAST(deposit AS DECIMAL(24,2)) FROM bills WHERE id = ?",
                (bill,),
            )
            .unwrap()
            .unwrap()
    };
    let run = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .arg("statement")
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("PAYSYS_CONFIG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text}");
        text
    };
    let (test1, a1b, company) = (deposit(1), deposit(8), deposit(6));
    let tx = |id: &str, sum: &str, ccy: &str, acc: &str, code: &str, name: &str, purpose: &str| {
        format!(
            r#"{{"AUT_MY_ACC":"{acc}","AUT_CNTR_CRF":"{code}","AUT_CNTR_ACC":"UA213052990000026201234567890",
            "AUT_CNTR_NAM":"{name}","CCY":"{ccy}","PR_PR":"r","DAT_OD":"05.12.2026","OSND":"{purpose}",
            "SUM":"{sum}","REF":"{id}","REFN":"1","TIM_P":"09:14","ID":"{id}9","TRANTYPE":"C"}}"#
        )
    };
    let privat = format!(
        r#"{{"status":"SUCCESS","type":"transactions","exist_next_page":false,"transactions":[{}]}}"#,
        [
            tx(
                "R1",
                "10.00",
                "UAH",
                IBAN,
                "41234567",
                "ТОВ Ромашка",
                "Оплата за рахунком 77"
            ),
            tx(
                "R2",
                "20.00",
                "UAH",
                IBAN,
                "31234567",
                "ТОВ Ромашка",
                "Оплата послуг зв'язку"
            ),
            tx(
                "R3",
                "30.00",
                "UAH",
                IBAN,
                "3012345678",
                "ІВАНОВ ІВАН",
                "Оплата"
            ),
            tx(
                "R4",
                "40.00",
                "UAH",
                IBAN,
                "0000000000",
                "ІВАНЕНКО ІВАН",
                "о/р test1"
            ),
            tx(
                "R5",
                "50.00",
                "USD",
                IBAN,
                "0000000000",
                "ІВАНОВ ІВАН",
                "о/р test1"
            ),
            tx(
                "R6",
                "60.00",
                "UAH",
                "UA903052990000026007233566009",
                "0",
                "ІВАНОВ ІВАН",
                "о/р test1"
            ),
        ]
        .join(",")
    );
    let file = base.join("privat.json");
    std::fs::write(&file, privat).unwrap();
    let out = run(&["import", file.to_str().unwrap()]);
    for expected in [
        "10.00 credited to a1b",
        "20.00 credited to test5",
        "30.00 credited to test1",
        "40.00 unmatched: account 'test1' is Ив*** И*** И*******, the payer is 'ІВАНЕНКО ІВАН'",
        "50.00 skipped: in USD, the account is in UAH",
        "60.00 skipped: on account UA903052990000026007233566009",
    ] {
        assert!(out.contains(expected), "{expected} in\n{out}");
    }
    assert_eq!(deposit(8), add(&a1b, "10.00"));
    assert_eq!(deposit(6), add(&company, "20.00"), "the company's bill");
    assert_eq!(deposit(1), add(&test1, "30.00"));

    // Monobank: the purpose is its description and comment; the payer's name matches.
    let mono = base.join("mono.json");
    std::fs::write(
        &mono,
        r#"[{"id":"ZuHWzqkKGVo=","time":1796511600,"description":"Від: Іванов І.","comment":"о/р test1","amount":5000,"operationAmount":5000,"currencyCode":980,"balance":0,"hold":false,"counterName":"ІВАНОВ ІВАН"}]"#,
    )
    .unwrap();
    let out = run(&["import", mono.to_str().unwrap(), "--bank", "mono"]);
    assert!(out.contains("50.00 credited to test1"), "{out}");
    assert!(run(&["import", mono.to_str().unwrap(), "--bank", "mono"]).contains("1 seen before"));
    assert_eq!(deposit(1), add(&test1, "80.00"));

    // A CSV export through the config's preset.
    let csv = base.join("oschad.csv");
    std::fs::write(
        &csv,
        "ДАТА;ЧАС;НОМЕР;ПРИЗНАЧЕННЯ;КОД ІДЕНТ.;КОНТРАГЕНТ;РАХУНОК КОНТРАГЕНТА;КОД ID НБУ;СУМА ДЕБЕТ;СУМА КРЕДИТ\n\
         05.12.2026;10:00;11;\"Оплата, о/р a1b\";2345678901;Шаблон Ц.;UA213052990000026201234567891;300001;;\"1 000,50\"\n\
         05.12.2026;10:05;12;Комісія банку;;;;;5,00;\n",
    )
    .unwrap();
    let out = run(&[
        "import",
        csv.to_str().unwrap(),
        "--bank",
        "oschad",
        "--format",
        "csv:oschad",
    ]);
    assert!(out.contains("1000.50 credited to a1b"), "{out}");
    assert!(out.contains("5.00 skipped: a debit"), "{out}");
    assert_eq!(deposit(8), add(&a1b, "1010.50"));
    // ABillS's rows name each bank's system.
    let systems: Vec<(String, u32)> = ab
        .db
        .conn()
        .query("SELECT transaction_id, system_id FROM paysys_log ORDER BY id")
        .unwrap();
    for (prefix, id) in [("PB:", 70), ("MB:", 71), ("OB:", 72)] {
        assert!(
            systems
                .iter()
                .any(|(t, s)| t.starts_with(prefix) && *s == id),
            "{prefix} {id}: {systems:?}"
        );
    }
}

/// `a` + `b`, both sums with two decimals.
fn add(a: &str, b: &str) -> String {
    let k = |t: &str| paysys::domain::Amount::parse(t).unwrap().kopecks();
    paysys::domain::Amount::from_kopecks(k(a) + k(b)).to_string()
}

/// The same payment in a 1C export and then in the bank's own JSON (or its API) has another
/// id in each: it is not credited a second time, but waits for the admin as "maybe the same
/// payment"; a payment of another payer that day is credited.
#[test]
fn the_same_payment_through_another_kind_of_statement_waits_for_the_admin() {
    let site = Site::nodeny();
    let payments = site.payments();
    let file = site.file("december.txt", &statement(site.account, site.other));
    site.import(&file, &[]);
    assert_eq!(site.payments(), payments + 1);
    let tx = |id: &str, acc: &str, purpose: &str| {
        format!(
            r#"{{"AUT_MY_ACC":"{IBAN}","AUT_CNTR_CRF":"2345678901","AUT_CNTR_ACC":"{acc}",
            "AUT_CNTR_NAM":"Петренко Петро","CCY":"UAH","PR_PR":"r","DAT_OD":"03.12.2026","OSND":"{purpose}",
            "SUM":"100.00","REF":"{id}","REFN":"1","TIM_P":"09:14","ID":"{id}9","TRANTYPE":"C"}}"#
        )
    };
    let json = format!(
        r#"{{"status":"SUCCESS","type":"transactions","exist_next_page":false,"transactions":[{},{}]}}"#,
        tx(
            "P1",
            "UA903052992990004149123456789",
            "Плата за інтернет, о/р 59071, Петренко П.В."
        ),
        tx(
            "P2",
            "UA903052992990004149999999999",
            "Плата за інтернет, о/р 59071"
        ),
    );
    let api = site.file("privat.json", json.as_bytes());
    let out = site.import(&api, &[]);
    assert!(
        out.contains("P1.1 100.00 ambiguous: maybe the same payment as row"),
        "{out}"
    );
    assert!(out.contains("P2.1 100.00 credited to 59071"), "{out}");
    assert_eq!(site.payments(), payments + 2, "once for P1, once for P2");
}

/// The sample statements of tests/fixtures/statements through the executable on NoDeny:
/// every row decided (none of their accounts is a subscriber here, so they wait), none
/// undecided, the UTF-8 export of the 1C day adding no row, and `--account` naming the
/// bank by its IBAN.
#[test]
fn the_sample_statements_import_whole() {
    let site = Site::nodeny();
    let text = std::fs::read_to_string(site.config()).unwrap();
    // A second bank for the files: no IBAN, every row of them is ours.
    std::fs::write(
        site.config(),
        text + "\n[[statement.bank]]\nname = \"files\"\nbank = \"file\"\naccount = \"payment_code\"\n",
    )
    .unwrap();
    let fixture = |name: &str| common::repo().join("tests/fixtures/statements").join(name);
    let kept = || site.db().count("SELECT COUNT(*) FROM paysys_statement");
    for (file, bank) in [
        ("onec-ua-1.03-cp1251.txt", "files"),
        ("onec-kz-2.00-cp1251.txt", "files"),
        ("privat-page1.json", "files"),
        ("privat-page2.json", "files"),
        ("monobank.json", "files"),
    ] {
        let out = site.import(&fixture(file), &["--bank", bank]);
        assert!(out.contains(" 0 not decided"), "{file}: {out}");
        assert!(!out.contains("credited to"), "{file}: {out}");
    }
    let before = kept();
    assert!(before > 5, "{before}");
    let out = site.import(&fixture("onec-ua-1.03-utf8-lf.txt"), &["--bank", "files"]);
    assert!(out.contains(" 0 not decided"), "{out}");
    assert_eq!(
        kept(),
        before,
        "the UTF-8 export of the same day adds no row: {out}"
    );
    // --account: the bank by its IBAN.
    let (code, out, err) = site.paysys(&[
        "import",
        fixture("privat-page1.json").to_str().unwrap(),
        "--account",
        "ua21 3223 1300 0002 6007 2335 6600 1",
        "--dry-run",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("skipped: on account"), "{out}");
    let (code, _, err) = site.paysys(&[
        "import",
        fixture("privat-page1.json").to_str().unwrap(),
        "--account",
        "UA000",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no [[statement.bank]] has this iban"), "{err}");
}
