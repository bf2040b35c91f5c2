//! `paysys statement pull` through the real `paysys` executable against MariaDB, on NoDeny
//! and on ABillS 1.50's tables, with stand-ins for PrivatBank's Autoclient API and
//! Monobank's statement API on 127.0.0.1: the headers each bank wants (`token`, `id`,
//! `X-Token`), PrivatBank's paging and its interim statement, a page that fails mid-pull
//! (what was imported stays credited once, `pulled_to` does not move, the next pull
//! credits the rest), Monobank's one call a minute (a short interval here), a span longer
//! than 31 days split, a call of 500 items asked again up to its oldest, a refused token,
//! a page that is not a statement, a row that cannot be read, and a bank that does not
//! answer.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Local, NaiveDate};
use common::abills::{Abills, Ddl};
use common::providers::http::{HttpServer, Request, Response};
use common::TestDb;
use mysql::prelude::Queryable;
use serde_json::{json, Value};

const RULES: &str = r#"
[[statement.rule]]
settlement = true
purpose = '(?i)перерахування коштів, прийнятих від платників|принятые платежи'

[[statement.rule]]
purpose = '(?i)(?:о/р|ос\.?\s*рах\.?|особистий рахунок|дог\.)\s*№?\s*(?P<account>[0-9a-z]{3,12})'
"#;

const IBAN: &str = "UA213223130000026007233566001";
const PRIVAT_TOKEN: &str = "privat-token-1";
const PRIVAT_ID: &str = "client-42";
const MONO_TOKEN: &str = "mono-token-1";
const MONO_ACCOUNT: &str = "fopAcc01";
/// The interval between Monobank calls the tests run with, and the stand-in's limit
/// (a little under it: the stand-in measures arrivals, paysys measures departures).
const INTERVAL_MS: u64 = 300;
const STANDIN_MIN_MS: u64 = 250;

/// A billing with the fixture, an install base, and which subscriber the rows name.
struct Site {
    nodeny: Option<(TestDb, common::Site)>,
    ab: Option<Abills>,
    base: PathBuf,
    abills: bool,
    account: &'static str,
}

impl Site {
    fn nodeny() -> Site {
        let db = TestDb::new();
        let site = common::Site::new(&db.url, "");
        let base = site.base.clone();
        Site {
            nodeny: Some((db, site)),
            ab: None,
            base,
            abills: false,
            account: "59071",
        }
    }

    fn abills() -> Site {
        let ab = Abills::on_ddl(Ddl::V1_50, "");
        let base = ab.site.base.clone();
        Site {
            nodeny: None,
            ab: Some(ab),
            base,
            abills: true,
            account: "test1",
        }
    }

    fn both() -> [Site; 2] {
        [Site::nodeny(), Site::abills()]
    }

    fn name(&self) -> &'static str {
        if self.abills {
            "abills"
        } else {
            "nodeny"
        }
    }

    fn db(&self) -> &TestDb {
        match (&self.nodeny, &self.ab) {
            (Some((db, _)), _) => db,
            (_, Some(ab)) => &ab.db,
            _ => unreachable!(),
        }
    }

    fn config(&self) -> PathBuf {
        self.base.join("etc/paysys.toml")
    }

    /// The config with `banks` (`[[statement.bank]]` tables).
    fn write_config(&self, banks: &str) {
        let billing = if self.abills { "abills" } else { "nodeny" };
        std::fs::write(
            self.config(),
            format!(
                "[database]\nurl = \"{}\"\nbilling = \"{billing}\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n\n{banks}\n{RULES}",
                self.db().url
            ),
        )
        .unwrap();
    }

    /// The billing's keys of a bank: how accounts are read, ABillS's ids.
    fn bank_keys(&self) -> &'static str {
        if self.abills {
            "account = \"login\"\nabills_id = 70\ntxn_prefix = \"BANK\""
        } else {
            "account = \"payment_code\""
        }
    }

    fn pull(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["statement", "pull"])
            .args(args)
            .arg(self.config())
            .env_remove("PAYSYS_CONFIG")
            .env("PAYSYS_TEST_MONOBANK_INTERVAL_MS", INTERVAL_MS.to_string())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn balance(&self) -> String {
        if self.abills {
            self.db()
                .conn()
                .exec_first::<String, _, _>(
                    "SELECT CAST(deposit AS DECIMAL(24,2)) FROM bills WHERE id = 1",
                    (),
                )
                .unwrap()
                .unwrap()
        } else {
            self.db().balance(5907)
        }
    }

    fn payments(&self) -> u64 {
        if self.abills {
            self.db().count("SELECT COUNT(*) FROM payments")
        } else {
            self.db().pays()
        }
    }

    /// `paysys_statement_pull`'s (pulled_to, last_error) of `bank`.
    fn pull_state(&self, bank: &str) -> Option<(Option<String>, Option<String>)> {
        self.db()
            .conn()
            .exec_first(
                "SELECT CAST(pulled_to AS CHAR), last_error FROM paysys_statement_pull WHERE bank = ?",
                (bank,),
            )
            .unwrap()
    }
}

/// `a` + `b` kopecks, both decimal text with two places.
fn plus(a: &str, kopecks: i64) -> String {
    let (int, frac) = a.split_once('.').unwrap();
    let negative = int.starts_with('-');
    let units: i64 =
        int.trim_start_matches('-').parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
    let total = if negative { -units } else { units } + kopecks;
    format!(
        "{}{}.{:02}",
        if total < 0 { "-" } else { "" },
        total.abs() / 100,
        total.abs() % 100
    )
}

// ---------------------------------------------------------------------------------------
// PrivatBank

/// One Autoclient transaction.
fn privat_tx(reference: &str, sum: &str, credit: bool, purpose: &str, booked: bool) -> Value {
    let today = Local::now().format("%d.%m.%Y").to_string();
    json!({
        "AUT_MY_ACC": IBAN,
        "AUT_CNTR_CRF": "3198765432",
        "AUT_CNTR_ACC": "UA583220010000026209301234567",
        "AUT_CNTR_NAM": "ПЕТРЕНКО ПЕТРО",
        "CCY": "UAH",
        "FL_REAL": "r",
        "PR_PR": if booked { "r" } else { "p" },
        "DAT_OD": today,
        "TIM_P": "00:01",
        "OSND": purpose,
        "SUM": sum,
        "REF": reference,
        "REFN": "1",
        "ID": "1",
        "TRANTYPE": if credit { "C" } else { "D" },
    })
}

fn privat_page(rows: Vec<Value>, next: Option<&str>) -> String {
    let mut page = json!({
        "status": "SUCCESS",
        "type": "transactions",
        "exist_next_page": next.is_some(),
        "transactions": rows,
    });
    if let Some(next) = next {
        page["next_page_id"] = json!(next);
    }
    page.to_string()
}

#[derive(Default)]
struct PrivatState {
    requests: Vec<Request>,
    /// Page 2 of the final statement answers 500.
    fail_page2: bool,
    /// Page 2 of the final statement answers 200 with what is not a statement.
    garbage_page2: bool,
    /// The interim statement has a row whose sum cannot be read.
    bad_row: bool,
}

/// PrivatBank's Autoclient on loopback: the final statement in two pages
/// (`followId=page-2` for the second), the interim statement in one; `token` and `id`
/// checked.
struct PrivatBank {
    server: HttpServer,
    state: Arc<Mutex<PrivatState>>,
}

impl PrivatBank {
    fn start(account: &'static str) -> PrivatBank {
        let state = Arc::new(Mutex::new(PrivatState::default()));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(move |r: &Request| {
            let mut state = shared.lock().unwrap();
            state.requests.push(r.clone());
            if r.header("token") != Some(PRIVAT_TOKEN) || r.header("id") != Some(PRIVAT_ID) {
                return Response::json(
                    401,
                    r#"{"status":"ERROR","code":"401","message":"Invalid token or client id"}"#,
                );
            }
            if r.query("acc").as_deref() != Some(IBAN) || r.query("limit").is_none() {
                return Response::json(400, r#"{"status":"ERROR","message":"bad acc or limit"}"#);
            }
            let purpose = |what: &str| format!("{what}, о/р {account}, Петренко П.");
            match (r.path(), r.query("followId").as_deref()) {
                ("/api/statements/transactions", follow) => {
                    let dates_ok = ["startDate", "endDate"].iter().all(|k| {
                        r.query(k)
                            .is_some_and(|d| NaiveDate::parse_from_str(&d, "%d-%m-%Y").is_ok())
                    });
                    if !dates_ok {
                        return Response::json(400, r#"{"status":"ERROR","message":"dates"}"#);
                    }
                    match follow {
                        None => Response::json(
                            200,
                            privat_page(
                                vec![
                                    privat_tx(
                                        "P1",
                                        "100.00",
                                        true,
                                        &purpose("Плата за інтернет"),
                                        true,
                                    ),
                                    privat_tx("P1D", "12.50", false, "Комісія банку", true),
                                ],
                                Some("page-2"),
                            ),
                        ),
                        Some("page-2") if state.fail_page2 => {
                            Response::text(500, "Internal Server Error")
                        }
                        Some("page-2") if state.garbage_page2 => {
                            Response::new(200, "text/html", "<html>maintenance</html>")
                        }
                        Some("page-2") => Response::json(
                            200,
                            privat_page(
                                vec![privat_tx("P2", "50.00", true, &purpose("Оплата"), true)],
                                None,
                            ),
                        ),
                        Some(other) => Response::json(
                            400,
                            format!(r#"{{"status":"ERROR","message":"unknown followId {other}"}}"#),
                        ),
                    }
                }
                ("/api/statements/transactions/interim", None) => {
                    let mut rows = vec![
                        privat_tx("P3", "25.00", true, &purpose("Сьогодні"), true),
                        privat_tx("P4", "70.00", true, &purpose("Ще не проведено"), false),
                    ];
                    if state.bad_row {
                        rows.push(privat_tx("P5", "1.234", true, &purpose("Сума?"), true));
                    }
                    Response::json(200, privat_page(rows, None))
                }
                _ => Response::json(404, r#"{"status":"ERROR","message":"not found"}"#),
            }
        });
        PrivatBank { server, state }
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    fn clear(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    fn set_fail_page2(&self, fail: bool) {
        self.state.lock().unwrap().fail_page2 = fail;
    }

    fn set_garbage_page2(&self, garbage: bool) {
        self.state.lock().unwrap().garbage_page2 = garbage;
    }

    fn set_bad_row(&self, bad: bool) {
        self.state.lock().unwrap().bad_row = bad;
    }

    fn bank(&self, site: &Site, token: &str) -> String {
        format!(
            "[[statement.bank]]\nname = \"privat_main\"\nbank = \"privat\"\niban = \"{IBAN}\"\n\
             token = \"{token}\"\nid = \"{PRIVAT_ID}\"\napi_url = \"{}\"\n{}\n",
            self.server.base_url(),
            site.bank_keys()
        )
    }
}

#[test]
fn privat_pages_are_followed_and_a_page_that_fails_is_fetched_again_next_time() {
    for site in Site::both() {
        let who = site.name();
        let bank = PrivatBank::start(site.account);
        site.write_config(&bank.bank(&site, PRIVAT_TOKEN));
        let before = site.balance();
        let payments = site.payments();

        // Page 2 fails: page 1's credit stays (once), pulled_to does not move.
        bank.set_fail_page2(true);
        let (code, out, err) = site.pull(&[]);
        assert_eq!(code, Some(1), "{who}: {out}{err}");
        assert!(
            err.contains("privat_main") && err.contains("page 2") && err.contains("HTTP 500"),
            "{who}: {err}"
        );
        assert!(err.contains("no window pulled whole yet"), "{who}: {err}");
        assert!(out.contains("100.00 credited to"), "{who}: {out}");
        assert_eq!(site.payments(), payments + 1, "{who}");
        assert_eq!(site.balance(), plus(&before, 10_000), "{who}");
        let (pulled_to, last_error) = site.pull_state("privat_main").expect("a state row");
        assert_eq!(pulled_to, None, "{who}");
        assert!(last_error.unwrap_or_default().contains("HTTP 500"), "{who}");

        // The headers and the query PrivatBank wants; a week back on the first pull.
        let requests = bank.requests();
        assert_eq!(requests.len(), 2, "{who}: {requests:?}");
        let week_ago = (Local::now() - chrono::Duration::days(7))
            .format("%d-%m-%Y")
            .to_string();
        let today = Local::now().format("%d-%m-%Y").to_string();
        for r in &requests {
            assert_eq!(r.method, "GET");
            assert_eq!(r.header("token"), Some(PRIVAT_TOKEN));
            assert_eq!(r.header("id"), Some(PRIVAT_ID));
            assert_eq!(
                r.header("Content-Type"),
                Some("application/json;charset=utf-8")
            );
            assert_eq!(r.query("startDate").as_deref(), Some(week_ago.as_str()));
            assert_eq!(r.query("endDate").as_deref(), Some(today.as_str()));
        }
        assert_eq!(requests[0].query("followId"), None);
        assert_eq!(requests[1].query("followId").as_deref(), Some("page-2"));

        // The bank is back: the window is fetched again from its start; page 1 is seen
        // before, page 2 and the interim statement are credited, nothing twice.
        bank.set_fail_page2(false);
        bank.clear();
        let (code, out, err) = site.pull(&[]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(err.is_empty(), "{who}: {err}");
        assert!(out.contains("seen before"), "{who}: {out}");
        assert!(out.contains("50.00 credited to"), "{who}: {out}");
        assert!(out.contains("25.00 credited to"), "{who}: {out}");
        assert!(
            out.contains("70.00 skipped: not posted by the bank yet"),
            "{who}: {out}"
        );
        assert!(out.contains("12.50 skipped: a debit"), "{who}: {out}");
        assert_eq!(site.payments(), payments + 3, "{who}");
        assert_eq!(site.balance(), plus(&before, 17_500), "{who}");
        let paths: Vec<String> = bank
            .requests()
            .iter()
            .map(|r| r.path().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "/api/statements/transactions",
                "/api/statements/transactions",
                "/api/statements/transactions/interim"
            ],
            "{who}"
        );
        assert_eq!(
            bank.requests()[0].query("startDate").as_deref(),
            Some(week_ago.as_str())
        );
        let (pulled_to, last_error) = site.pull_state("privat_main").unwrap();
        assert!(pulled_to.is_some(), "{who}");
        assert_eq!(last_error, None, "{who}");

        // The next pull starts a day before pulled_to, and credits nothing again.
        bank.clear();
        let (code, out, err) = site.pull(&["--bank", "privat_main"]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(out.contains("0 credited"), "{who}: {out}");
        assert_eq!(site.payments(), payments + 3, "{who}");
        let start = bank.requests()[0].query("startDate").unwrap();
        let start = NaiveDate::parse_from_str(&start, "%d-%m-%Y").unwrap();
        let days_back = (Local::now().date_naive() - start).num_days();
        assert!((1..=2).contains(&days_back), "{who}: started {start}");
    }
}

/// With `[log] database = true` a pull leaves a row per window in the request history:
/// its calls to the bank as the request, what came of them as the answer — a failed
/// window as an error, with the calls it made.
#[test]
fn each_pulled_window_is_a_row_of_the_request_history() {
    for site in Site::both() {
        let who = site.name();
        let bank = PrivatBank::start(site.account);
        site.write_config(&bank.bank(&site, PRIVAT_TOKEN));
        let text = std::fs::read_to_string(site.config()).unwrap();
        std::fs::write(
            site.config(),
            text.replacen("[log]\n", "[log]\ndatabase = true\n", 1),
        )
        .unwrap();
        bank.set_fail_page2(true);
        assert_eq!(site.pull(&[]).0, Some(1), "{who}");
        bank.set_fail_page2(false);
        let (code, out, err) = site.pull(&[]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["requests", "--system", "privat_main", "--config"])
            .arg(site.config())
            .env_remove("PAYSYS_CONFIG")
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let rows: Vec<&str> = listed.lines().collect();
        assert_eq!(rows.len(), 2, "{who}: {listed}");
        assert!(
            rows[0].contains(" status=error ") && rows[0].contains("HTTP 500"),
            "{who}: {}",
            rows[0]
        );
        assert_eq!(rows[0].matches("GET http").count(), 2, "{who}: {}", rows[0]);
        assert!(
            rows[1].contains(" status=ok ") && rows[1].contains("credited"),
            "{who}: {}",
            rows[1]
        );
        assert_eq!(rows[1].matches("GET http").count(), 3, "{who}: {}", rows[1]);
        assert!(rows[1].contains("/interim"), "{who}: {}", rows[1]);
        // The token travels in a header, never in what is kept.
        assert!(!listed.contains(PRIVAT_TOKEN), "{who}: {listed}");
    }
}

#[test]
fn a_refused_token_a_broken_page_an_unreadable_row_or_a_silent_bank_is_named() {
    let site = Site::nodeny();
    let bank = PrivatBank::start(site.account);
    let payments = site.payments();
    site.write_config(&bank.bank(&site, "wrong-token"));
    let (code, out, err) = site.pull(&[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("privat_main") && err.contains("refused the token (HTTP 401)"),
        "{err}"
    );
    assert!(err.contains("Invalid token or client id"), "{err}");
    assert_eq!(site.payments(), payments);
    assert_eq!(site.pull_state("privat_main").unwrap().0, None);

    // A page that is not a statement: page 1 credited, the window not done.
    site.write_config(&bank.bank(&site, PRIVAT_TOKEN));
    bank.set_garbage_page2(true);
    let (code, out, err) = site.pull(&[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("privat_main") && err.contains("page 2: a broken page"),
        "{err}"
    );
    assert_eq!(site.payments(), payments + 1);
    assert_eq!(site.pull_state("privat_main").unwrap().0, None);

    // A row that cannot be read does not hold the pull back (the bank would send the same
    // bytes again), but is said, and the run exits 1.
    bank.set_garbage_page2(false);
    bank.set_bad_row(true);
    let (code, out, err) = site.pull(&[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("unreadable: SUM"), "{out}");
    assert!(
        err.contains("privat_main: 1 rows could not be read"),
        "{err}"
    );
    assert_eq!(site.payments(), payments + 3);
    let (pulled_to, last_error) = site.pull_state("privat_main").unwrap();
    assert!(pulled_to.is_some() && last_error.is_none());

    // Nothing listens on the port any more.
    let url = bank.server.base_url();
    drop(bank);
    site.write_config(&format!(
        "[[statement.bank]]\nname = \"mono_fop\"\nbank = \"monobank\"\niban = \"{IBAN}\"\n\
         token = \"{MONO_TOKEN}\"\naccount_id = \"{MONO_ACCOUNT}\"\napi_url = \"{url}\"\n{}\n\
         [[statement.bank]]\nname = \"by_file\"\nbank = \"file\"\niban = \"UA903052992990004149123456789\"\n{}\n",
        site.bank_keys(),
        site.bank_keys()
    ));
    let (code, out, err) = site.pull(&[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("mono_fop") && err.contains("no answer"),
        "{err}"
    );
    assert!(
        !err.contains(MONO_TOKEN),
        "the token stays out of messages: {err}"
    );
    assert_eq!(site.payments(), payments + 3);
    let (code, _, err) = site.pull(&["--bank", "by_file"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no API"), "{err}");
    let (code, _, err) = site.pull(&["--bank", "nobody"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no [[statement.bank]] of that name"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Monobank

#[derive(Default)]
struct MonoState {
    items: Vec<Value>,
    /// (from, to) of every call answered with a statement.
    calls: Vec<(i64, i64)>,
    /// Calls answered 429 (sooner than the interval after the previous one).
    too_soon: usize,
    last: Option<Instant>,
}

/// Monobank's statement API on loopback: `X-Token` checked, one call per
/// [`STANDIN_MIN_MS`] (429 sooner), at most 31 days + 1 hour per call, at most 500 items
/// per call, newest first.
struct Monobank {
    server: HttpServer,
    state: Arc<Mutex<MonoState>>,
}

impl Monobank {
    fn start(items: Vec<Value>) -> Monobank {
        let state = Arc::new(Mutex::new(MonoState {
            items,
            ..MonoState::default()
        }));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(move |r: &Request| {
            let mut state = shared.lock().unwrap();
            if r.header("X-Token") != Some(MONO_TOKEN) {
                return Response::json(403, r#"{"errorDescription":"Unknown 'X-Token'"}"#);
            }
            let now = Instant::now();
            if let Some(last) = state.last {
                if now.duration_since(last) < Duration::from_millis(STANDIN_MIN_MS) {
                    state.too_soon += 1;
                    return Response::json(429, r#"{"errorDescription":"Too many requests"}"#);
                }
            }
            state.last = Some(now);
            let parts: Vec<&str> = r.path().split('/').collect();
            let ["", "personal", "statement", account, from, to] = parts.as_slice() else {
                return Response::json(404, r#"{"errorDescription":"not found"}"#);
            };
            let (Ok(from), Ok(to)) = (from.parse::<i64>(), to.parse::<i64>()) else {
                return Response::json(400, r#"{"errorDescription":"bad period"}"#);
            };
            if *account != MONO_ACCOUNT {
                return Response::json(400, r#"{"errorDescription":"unknown account"}"#);
            }
            if to - from > 31 * 86_400 + 3_600 || to < from {
                return Response::json(
                    400,
                    r#"{"errorDescription":"Period must be no more than 31 days"}"#,
                );
            }
            state.calls.push((from, to));
            let mut items: Vec<Value> = state
                .items
                .iter()
                .filter(|i| {
                    let t = i["time"].as_i64().unwrap();
                    t >= from && t <= to
                })
                .cloned()
                .collect();
            items.sort_by_key(|i| std::cmp::Reverse(i["time"].as_i64().unwrap()));
            items.truncate(500);
            Response::json(200, Value::Array(items).to_string())
        });
        Monobank { server, state }
    }

    fn bank(&self, site: &Site) -> String {
        format!(
            "[[statement.bank]]\nname = \"mono_fop\"\nbank = \"monobank\"\niban = \"{IBAN}\"\n\
             token = \"{MONO_TOKEN}\"\naccount_id = \"{MONO_ACCOUNT}\"\napi_url = \"{}\"\n{}\n",
            self.server.base_url(),
            site.bank_keys()
        )
    }
}

fn mono_item(id: &str, time: i64, amount: i64, purpose: &str) -> Value {
    json!({
        "id": id,
        "time": time,
        "description": purpose,
        "amount": amount,
        "operationAmount": amount,
        "currencyCode": 980,
        "balance": 1_000_000,
        "hold": false,
    })
}

#[test]
fn monobank_spans_are_split_paced_and_500_items_asked_again() {
    for site in Site::both() {
        let who = site.name();
        let now = Local::now().timestamp();
        let from_day = (Local::now() - chrono::Duration::days(40)).date_naive();
        let purpose = format!("Плата за інтернет, о/р {}", site.account);
        // Span 1 (40..9 days ago): one credit. Span 2: a credit older than the 500 newest
        // items (debits), which only the second call of the span returns.
        let mut items = vec![
            mono_item("old-credit=", now - 35 * 86_400, 10_000, &purpose),
            mono_item("deep-credit=", now - 5 * 86_400, 2_000, &purpose),
        ];
        for i in 0..510 {
            items.push(mono_item(
                &format!("debit-{i}"),
                now - 4 * 86_400 + i * 60,
                -100,
                "Комісія",
            ));
        }
        let bank = Monobank::start(items);
        site.write_config(&bank.bank(&site));
        let before = site.balance();
        let payments = site.payments();

        let started = Instant::now();
        let (code, out, err) = site.pull(&["--from", &from_day.format("%Y-%m-%d").to_string()]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(out.contains("100.00 credited to"), "{who}: {out}");
        assert!(out.contains("20.00 credited to"), "{who}: {out}");
        assert_eq!(site.payments(), payments + 2, "{who}");
        assert_eq!(site.balance(), plus(&before, 12_000), "{who}");

        let state = bank.state.lock().unwrap();
        let calls = state.calls.clone();
        assert_eq!(
            state.too_soon, 0,
            "{who}: paysys called sooner than the interval"
        );
        drop(state);
        // Two spans, the second asked twice (500 items, then up to the oldest of them).
        assert_eq!(calls.len(), 3, "{who}: {calls:?}");
        let from_unix = from_day
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_local_timezone(Local)
            .earliest()
            .unwrap()
            .timestamp();
        assert_eq!(calls[0].0, from_unix, "{who}");
        assert_eq!(calls[0].1 - calls[0].0, 31 * 86_400 + 3_600, "{who}");
        assert_eq!(calls[1].0, calls[0].1, "{who}: spans meet");
        assert!(calls[1].1 >= now, "{who}");
        assert_eq!(calls[2].0, calls[1].0, "{who}");
        let oldest_of_500 = now - 4 * 86_400 + 10 * 60;
        assert_eq!(
            calls[2].1, oldest_of_500,
            "{who}: to = the oldest item returned"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(2 * INTERVAL_MS),
            "{who}"
        );
        let (pulled_to, last_error) = site.pull_state("mono_fop").unwrap();
        assert!(pulled_to.is_some() && last_error.is_none(), "{who}");

        // Pulled again at once: a day back, one span; a 429 from a call too soon after
        // the last run is waited out; nothing credited twice.
        let (code, out, err) = site.pull(&[]);
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(out.contains("0 credited"), "{who}: {out}");
        assert_eq!(site.payments(), payments + 2, "{who}");
        let calls = bank.state.lock().unwrap().calls.clone();
        let last = calls.last().unwrap();
        assert!(
            (last.1 - last.0 - 86_400).abs() < 120,
            "{who}: a day back from pulled_to: {last:?}"
        );
    }
}
