//! `paysys`: the admin's command line.
//!
//! ```text
//! paysys check-config [CONFIG]   read the config (and its paysys.d/ overlays) as the CGIs
//!                                would, and report the first error with file, line and key
//! paysys check-db [CONFIG]       connect as the CGIs would and check the tables: present,
//!                                transactional (InnoDB), paysys_txn's UNIQUE key in place
//! paysys import-abills [CONFIG]  print ABillS's payment systems (paysys_connect) as a
//!                                paysys.d/ overlay
//! paysys code ID...              NoDeny personal payment codes for subscriber ids
//! paysys txn TXN_ID [--system S] [--config CONFIG]
//! paysys txn --account A [--from DATE] [--system S] [--config CONFIG]
//!                                was this payment committed? our row for it (the truth,
//!                                whatever an answer or a log line said), the billing's rows
//!                                and its log lines
//! paysys reconcile REGISTRY --system S --date YYYY-MM-DD [--config CONFIG] [options]
//!                                a provider's registry (CSV) of a day's payments against
//!                                paysys_txn; see paysys::reconcile
//! paysys report --from DATE --to DATE [--system S] [--by day|system]
//!               [--format table|csv|html] [--config CONFIG]
//!                                credited, cancelled and refused per day or system, from
//!                                paysys_txn and paysys_refusal; see paysys::report
//! paysys audit [--from DATE] [--to DATE] [--system S] [CONFIG]
//!                                paysys_txn against the billing's rows and balances: what is
//!                                missing, differs, unknown or not reversed; see paysys::audit
//! paysys sweep [CONFIG]         card orders whose callback never came: ask the providers'
//!                                status APIs and settle them as a callback would
//! paysys orders [--state S] [--from DATE] [--to DATE] [--system S] [CONFIG]
//!                                the card orders, with their states and times
//! paysys statement import|list|assign|ignore|pull …
//!                                bank statements credited once, and the queue of rows no
//!                                rule matched; see paysys::admin::statement
//! paysys paypro-provider --url URL [--number N] [--name NAME] [--cp1251]
//!                                the PayPRO own-provider description (MyProviders.ini) that
//!                                makes a PayPRO terminal pre-check and pay through URL
//! paysys terminal --url URL check|pay ACCOUNT [SUM] | --txn-id N --status|--cancel
//! paysys terminal --paypro FILE --provider N check|pay ACCOUNT [SUM]
//!                                a payment terminal in a command: pays through a deployment
//!                                over HTTP(S) and says whether the money is confirmed,
//!                                refused or in doubt; see paysys::terminal
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use paysys::config::{self, Config};
use paysys::domain::PaymentCode;

const USAGE: &str = "usage:
  paysys check-config [CONFIG]   check etc/paysys.toml (default: $PAYSYS_CONFIG, or ../etc/paysys.toml
                                 next to this program) and its paysys.d/ overlays
  paysys check-db [CONFIG]       connect as the CGIs would and check the billing's tables and ours
  paysys import-abills [CONFIG]  print ABillS's payment systems (paysys_connect) as a paysys.d/
                                 overlay: paysys import-abills > /usr/abills/etc/paysys.d/50-abills.toml
  paysys code ID...              print the NoDeny payment code of each subscriber id
  paysys txn TXN_ID [--system S] [--config CONFIG]
  paysys txn --account A [--from YYYY-MM-DD] [--system S] [--config CONFIG]
                                 was payment TXN_ID committed (or: the payments to account A)?
                                 TXN_ID may be a card order's id; prints the order, our paysys_txn row, the billing's rows (NoDeny pays;
                                 ABillS payments, paysys_log) and the log lines;
                                 exit 0 found, 1 nothing committed, 2 error
  paysys reconcile REGISTRY --system S --date YYYY-MM-DD [--config CONFIG] [OPTIONS]
                                 compare a provider's registry (CSV) of one day's payments with
                                 what we credited for S that day (by txn_date, not cancelled);
                                 lists what is missing on either side and what differs, then
                                 totals; exit 0 agree, 1 differ, 2 error.
                                 paysys reconcile --help: columns, delimiter, encoding
  paysys report --from YYYY-MM-DD --to YYYY-MM-DD [--system S] [--by day|system]
                [--format table|csv|html] [--config CONFIG]
                                 count and sum credited and cancelled (by txn_date's day), and
                                 pays refused by comment, per day or per system, from our
                                 tables; exit 0 printed, 2 error. paysys report --help
  paysys requests [--system S] [--txn T] [--account A] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--config CONFIG]
  paysys requests --purge-before YYYY-MM-DD [--config CONFIG]
  paysys requests --purge [--config CONFIG]
                                 the request history ([log] database = true): each request of a
                                 known system and our answer, secrets masked, one line each;
                                 --purge(-before) deletes old rows in batches; exit 0, 2 error.
                                 paysys requests --help
  paysys audit [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--system S] [CONFIG]
                                 check every payment of paysys_txn committed or cancelled on
                                 those days (default: yesterday and today) against the
                                 billing's rows, list billing rows of our systems it does not
                                 know, and check the balances of the subscribers paid; one
                                 line per discrepancy with what to do, then totals;
                                 exit 0 clean, 1 discrepancies, 2 error. paysys audit --help
  paysys sweep [CONFIG]          settle the card orders whose callback never came: ask each
                                 waiting order's provider (status API) and settle its word as
                                 a callback would; one line per order changed, then a summary;
                                 exit 0 ran, 1 an error. paysys sweep --help
  paysys orders [--state S] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--system S] [CONFIG]
                                 list the card orders (id, system, account, sum, state, times);
                                 exit 0 listed, 2 error
  paysys statement import FILE... [--bank NAME | --account IBAN] [--format F] [--dry-run] [--config CONFIG]
  paysys statement list [--unmatched | --settlements | --all] [--from YYYY-MM-DD] [--bank NAME] [--config CONFIG]
  paysys statement assign ROW ACCOUNT [--admin NAME] [--config CONFIG]
  paysys statement ignore ROW --reason TEXT [--by-hand] [--admin NAME] [--config CONFIG]
  paysys statement pull [--bank NAME] [--from YYYY-MM-DD] [--config CONFIG]
                                 bank statements (1C, PrivatBank, Monobank, CSV; pull: from
                                 PrivatBank's and Monobank's APIs) credited once by the
                                 [[statement.rule]]s; unmatched rows wait in a queue.
                                 paysys statement --help
  paysys paypro-provider --url URL [--number N] [--name NAME] [--cp1251]
                                 print the PayPRO own-provider description (MyProviders.ini) for
                                 the endpoint at URL (…/cgi-bin/osmp.cgi or …/paysys_check.cgi);
                                 --cp1251: in Windows-1251 with CRLF, as PayPRO's own files are
  paysys terminal --url URL [OPTIONS] check ACCOUNT [SUM]
  paysys terminal --url URL [OPTIONS] pay ACCOUNT SUM
  paysys terminal --url URL [OPTIONS] --txn-id N --status
  paysys terminal --url URL [OPTIONS] --txn-id N --cancel
  paysys terminal --paypro FILE [--paypro FILE…] --provider N [OPTIONS] check|pay ACCOUNT [SUM]
                                 act as a payment terminal over HTTP(S): print the request, the
                                 answer and its meaning, ask again after temporary answers;
                                 exit 0 confirmed, 1 refused, 2 usage, 3 in doubt.
                                 paysys terminal --help: every option
  paysys easypay-verify REQUEST.xml --certificate FILE [--sign sha1|sha256]
  paysys easypay-verify REQUEST.xml --system S [--config CONFIG]
                                 does a captured EasyPay request verify with EasySoft's
                                 certificate (or system S's)? exit 0 yes, 1 no, 2 usage";

fn main() -> ExitCode {
    // `paysys txn 666 | head`: like any Unix tool, end quietly when the reader goes away.
    // Rust ignores SIGPIPE, which turns every later print into a panic message instead.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(cmd @ ("check-config" | "check-db" | "import-abills" | "code" | "sweep"))
            if args[1..].iter().any(|a| a == "-h" || a == "--help") =>
        {
            println!("{}", own_usage(cmd));
            ExitCode::SUCCESS
        }
        Some("check-config") => check_config(args.get(1).map(PathBuf::from)),
        Some("check-db") => check_db(args.get(1).map(PathBuf::from)),
        Some("import-abills")
            if args.len() <= 2 && !args.iter().skip(1).any(|a| a.starts_with('-')) =>
        {
            import_abills(args.get(1).map(PathBuf::from))
        }
        Some("code") if args.len() > 1 => code(&args[1..]),
        Some("txn") => txn(&args[1..]),
        #[cfg(feature = "sweep")]
        Some("sweep") if args.len() <= 2 && !args.iter().skip(1).any(|a| a.starts_with('-')) => {
            sweep(args.get(1).map(PathBuf::from))
        }
        Some("orders") => orders(&args[1..]),
        Some("reconcile") => ExitCode::from(paysys::reconcile::command(&args[1..], config_path)),
        Some("report") => ExitCode::from(paysys::report::command(&args[1..], config_path)),
        Some("requests") => {
            ExitCode::from(paysys::admin::requests::command(&args[1..], config_path))
        }
        Some("audit") => ExitCode::from(paysys::audit::command(&args[1..], config_path)),
        Some("statement") => {
            ExitCode::from(paysys::admin::statement::command(&args[1..], config_path))
        }
        Some("paypro-provider") => paypro_provider(&args[1..]),
        Some("easypay-verify") => easypay_verify(&args[1..]),
        #[cfg(feature = "terminal")]
        Some("terminal") => ExitCode::from(paysys::terminal::command(&args[1..])),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The config file: the argument, else where the CGIs would look.
fn config_path(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        let env = std::env::var_os("PAYSYS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let exe = std::env::current_exe().ok();
        config::locate(env.as_deref(), exe.as_deref())
    })
}

fn check_db(path: Option<PathBuf>) -> ExitCode {
    let config = match Config::load(&config_path(path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::FAILURE;
        }
    };
    let billing = paysys::billing::of(config.database.billing);
    // Each node of a list, or a single server that is a cluster node: how it stands.
    let mut nodes_ok = true;
    let survey = paysys::db::survey(&config.database);
    let clustered = survey
        .iter()
        .any(|s| matches!(s.state, Ok(paysys::db::Membership::Galera { .. })));
    if survey.len() > 1 || clustered {
        for s in &survey {
            let (ok, text) = describe_node(&s.state, survey.len() > 1);
            nodes_ok &= ok;
            let line = format!("{:<8} {}", format!("node {}", s.node.index), s.node.address);
            if ok {
                println!("{line}  {text}");
            } else {
                eprintln!("paysys: {line}  {text}");
            }
        }
    }
    let mut conn = match paysys::db::connect(&config.database, paysys::db::Use::Read) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: database: {e}");
            return ExitCode::FAILURE;
        }
    };
    // EasyPay and Click book orders in a table of its own: needed only where a system
    // speaks one of them.
    let mut tables: Vec<&str> = billing.tables().to_vec();
    let books = |p: paysys::config::ProtocolKind| {
        use paysys::config::ProtocolKind::{Click, Easypay, Payme};
        matches!(p, Easypay | Click | Payme)
    };
    if config
        .systems
        .iter()
        .any(|s| books(s.protocol) || s.protocol.card())
    {
        tables.push("paysys_order");
    }
    if config.systems.iter().any(|s| s.protocol.card()) {
        tables.push("paysys_page_miss");
    }
    if config.systems.iter().any(|s| s.statement().is_some()) {
        tables.push("paysys_statement");
        tables.push("paysys_statement_pull");
    }
    if config.log.database {
        tables.push(paysys::history::table_name(config.database.billing));
    }
    // The grants are asked about once the tables are there.
    let problems = paysys::db::schema_problems(&mut conn, &tables).and_then(|mut problems| {
        if problems.is_empty() {
            problems.extend(billing.grant_problems(&mut conn)?);
        }
        if config.database.procedure {
            problems.extend(billing.procedure_problems(&mut conn)?);
        }
        Ok(problems)
    });
    match problems {
        Err(e) => {
            eprintln!("paysys: database: {e}");
            ExitCode::FAILURE
        }
        Ok(problems) if problems.is_empty() => {
            println!(
                "ok: tables {} and paysys_txn are in place and transactional",
                tables.join(", ")
            );
            if nodes_ok {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "paysys: not every node of [database] url can serve payments (see above)"
                );
                ExitCode::FAILURE
            }
        }
        Ok(problems) => {
            for p in problems {
                eprintln!("paysys: {p}");
            }
            ExitCode::FAILURE
        }
    }
}

/// One node's line of `check-db`, and whether it can serve payments as it stands. `listed`:
/// one of several URLs, which must all be nodes of one cluster.
fn describe_node(state: &Result<paysys::db::Membership, String>, listed: bool) -> (bool, String) {
    use paysys::db::Membership;
    match state {
        Err(why) => (false, why.clone()),
        Ok(Membership::Plain) if listed => (
            false,
            "not a Galera cluster member (wsrep_on is off), so not used: a [database] url \
             list names the nodes of one cluster; a server of its own would take payments \
             the cluster never sees"
                .into(),
        ),
        Ok(Membership::Plain) => (true, "a server of its own (no cluster)".into()),
        Ok(Membership::Galera {
            state,
            synced,
            status,
            size,
            problems,
        }) => {
            let mut text = format!("Galera node: {state}, {status} component of {size} nodes");
            if !synced {
                text.push_str(
                    " — cannot serve (not Synced, not ready, or cut off from the Primary \
                     component): skipped until it can",
                );
            }
            for p in problems {
                text.push_str("\n         ");
                text.push_str(p);
            }
            (*synced && problems.is_empty(), text)
        }
    }
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    let path = config_path(path);
    match Config::load(&path) {
        Err(e) => {
            eprintln!("paysys: {e}");
            ExitCode::FAILURE
        }
        Ok(c) => {
            for file in &c.files {
                println!("read     {}", file.display());
            }
            if c.database.procedure {
                println!(
                    "billing  {}, a plain pay in one CALL of {} (sql/abills-pay.sql; \
                     paysys check-db checks it is there)",
                    c.database.billing.name(),
                    paysys::billing::abills::PAY_PROCEDURE
                );
            } else {
                println!("billing  {}", c.database.billing.name());
            }
            for (i, url) in c.database.urls.iter().enumerate() {
                let which = if c.database.urls.len() > 1 {
                    format!(" (node {}: tried in this order)", i + 1)
                } else {
                    String::new()
                };
                println!("database {}{which}", paysys::db::describe_url(url));
            }
            println!(
                "log      {}{}",
                if c.log.to_file {
                    c.log.file.display().to_string()
                } else {
                    "no file (file = false): lines without a row go to stderr".into()
                },
                if c.log.debug { " (debug)" } else { "" }
            );
            if c.log.database {
                println!(
                    "history  table {}, rows kept {}",
                    paysys::history::table_name(c.database.billing),
                    match c.log.keep_days {
                        0 => "for ever".to_string(),
                        n => format!("{n} days"),
                    }
                );
            }
            for s in &c.systems {
                let keys: Vec<&str> = s.account.keys.iter().map(|k| k.name()).collect();
                let expr = s
                    .account
                    .expr
                    .as_ref()
                    .map(|e| format!(" account_expr={}", e.as_str()))
                    .unwrap_or_default();
                // A bank account: no caller, no limits; its rows are matched by the rules.
                if let Some(bank) = s.statement() {
                    let rules = c
                        .statement
                        .rules
                        .iter()
                        .filter(|r| r.bank.as_deref().is_none_or(|b| b == s.name))
                        .count();
                    println!(
                        "bank     {} {} account {} ({}) account={}{expr}, {rules} rules{}",
                        s.name,
                        bank.bank.name(),
                        bank.iban.as_deref().unwrap_or("(any: the files' own)"),
                        bank.currency,
                        keys.join(","),
                        if bank.bank == paysys::config::BankKind::File {
                            String::new()
                        } else {
                            format!(", pulled from {}", bank.api_url)
                        }
                    );
                    if rules == 0 {
                        println!(
                            "warning  {}: no [[statement.rule]] reads an account: every row \
                             of its statements waits in the queue",
                            s.name
                        );
                    }
                    continue;
                }
                println!(
                    "system   {} protocol={} account={}{expr} sums={}..{} window={}h{}{}",
                    s.name,
                    s.protocol.name(),
                    keys.join(","),
                    s.min_sum,
                    s.max_sum,
                    s.txn_window_hours,
                    if s.test {
                        " TEST (txn_date=now accepted)"
                    } else {
                        ""
                    },
                    if s.allow.is_empty() {
                        " — allow list empty: nobody can call"
                    } else {
                        ""
                    },
                );
                println!("limits   {}: {}", s.name, limits(s, c.database.billing));
            }
            if !c.systems.iter().any(|s| s.protocol.called()) {
                println!("warning  no [[system]]: every caller will be refused");
            }
            for p in &c.statement.csv {
                let preset: Result<paysys::statement::csv::CsvPreset, String> =
                    toml::Value::Table(p.table.clone())
                        .try_into()
                        .map_err(|e: toml::de::Error| e.to_string())
                        .and_then(|preset: paysys::statement::csv::CsvPreset| {
                            preset.check().map(|()| preset).map_err(|e| e.to_string())
                        });
                if let Err(e) = preset {
                    eprintln!(
                        "paysys: config {} line {}: statement.csv '{}': {e}",
                        p.path.display(),
                        p.line,
                        p.name
                    );
                    return ExitCode::FAILURE;
                }
                println!(
                    "csv      preset {} ({}:{})",
                    p.name,
                    p.path.display(),
                    p.line
                );
            }
            // Patterns are compiled when first used (domain::Pattern); here, all of them,
            // so that one too large to compile is named now, not met by a request.
            let patterns = c
                .systems
                .iter()
                .flat_map(|s| {
                    let expr = s.account.expr.as_ref().map(|e| e.pattern());
                    let merchant = s.card().and_then(|card| card.merchant.accounts.as_ref());
                    [expr, merchant]
                        .into_iter()
                        .flatten()
                        .map(|p| (format!("system {}", s.name), p))
                })
                .chain(c.statement.rules.iter().filter_map(|r| match &r.kind {
                    paysys::config::RuleKind::Purpose { pattern, .. }
                    | paysys::config::RuleKind::Settlement { pattern } => {
                        Some((format!("statement rule at {}", r.place()), pattern))
                    }
                    _ => None,
                }));
            for (place, pattern) in patterns {
                if let Err(e) = pattern.compile() {
                    eprintln!("paysys: config: {place}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            for s in c.systems.iter().filter(|s| !s.test_allow.is_empty()) {
                println!(
                    "test     {}: test_allow callers are served in test mode (txn_date=now accepted)",
                    s.name
                );
            }
            for s in &c.systems {
                let Some(rule) = s.rsa() else { continue };
                let cert = paysys::protocol::easypay::load_certificate(&rule.certificate);
                let key = rule
                    .private_key
                    .as_deref()
                    .map(paysys::protocol::easypay::load_private_key);
                match (cert, key) {
                    (Err(e), _) | (_, Some(Err(e))) => {
                        eprintln!("paysys: system {}: {e}", s.name);
                        return ExitCode::FAILURE;
                    }
                    (Ok(_), key) => println!(
                        "keys     {}: certificate {} verifies requests{}",
                        s.name,
                        rule.certificate.display(),
                        if key.is_some() {
                            "; answers are signed"
                        } else {
                            "; answers go unsigned (no private_key)"
                        }
                    ),
                }
            }
            // The signed text each 24NonStop system expects: what to compare with the
            // operator's description when every request gets -101.
            for s in &c.systems {
                let Some(rule) = s.sign() else { continue };
                if s.protocol == paysys::config::ProtocolKind::Click {
                    println!(
                        "sign     {}: sign_string = md5(click_trans_id service_id secret_key \
                         merchant_trans_id [merchant_prepare_id] amount action sign_time), \
                         service_id {}",
                        s.name,
                        match &rule.service {
                            paysys::config::ServiceSlot::Fixed(id) => id.as_str(),
                            _ => "",
                        }
                    );
                    continue;
                }
                if s.protocol == paysys::config::ProtocolKind::Payme {
                    println!(
                        "keys     {}: every request's Authorization must be Basic \
                         base64(Paycom:key); the web server passes it as HTTP_AUTHORIZATION \
                         (INSTALL section 17)",
                        s.name
                    );
                    continue;
                }
                if s.protocol != paysys::config::ProtocolKind::Nonstop24 {
                    continue;
                }
                let hash = match rule.hash {
                    paysys::config::SignHash::Sha1 => "SHA1",
                    _ => "MD5",
                };
                let (service, sent) = match &rule.service {
                    paysys::config::ServiceSlot::Sent => {
                        ("_SERVICE_ID".to_string(), "a request must send SERVICE_ID")
                    }
                    paysys::config::ServiceSlot::Fixed(id) => {
                        (format!("_{id}"), "a request may send only this SERVICE_ID")
                    }
                    paysys::config::ServiceSlot::Absent => {
                        (String::new(), "a request may not send SERVICE_ID")
                    }
                };
                let (amount, on) = if rule.amount {
                    ("[_PAY_AMOUNT]", "; PAY_AMOUNT on ACT=4")
                } else {
                    ("", "")
                };
                println!(
                    "sign     {}: SIGN = {hash}(ACT_PAY_ACCOUNT{service}_PAY_ID{amount}_secret){on}; \
                     {sent}",
                    s.name
                );
            }
            for s in c
                .systems
                .iter()
                .filter(|s| s.protocol.signed() && s.sign().is_none() && s.rsa().is_none())
            {
                println!(
                    "warning  {}: sign = \"none\": requests are not checked against a secret; \
                     anyone who can reach the URL from an allowed address can pay",
                    s.name
                );
            }
            // EasySoft signs every provider's requests with one key: without service_id, a
            // request signed for another provider's service verifies here too, and only the
            // allow list keeps it out.
            for s in c
                .systems
                .iter()
                .filter(|s| s.rsa().is_some_and(|r| r.service_id.is_none()))
            {
                println!(
                    "warning  {}: no service_id: a request EasyPay signed for another \
                     provider's ServiceId is accepted too; set service_id to this provider's",
                    s.name
                );
            }
            // Card systems: what would let money be credited without a real payment.
            for s in &c.systems {
                let Some(card) = s.card() else { continue };
                if card.sandbox {
                    println!(
                        "warning  {}: sandbox = true: the provider's test payments are credited \
                         as real ones; only for trying the setup, never in production",
                        s.name
                    );
                }
                for (key, url) in [
                    ("api_url", &card.api_url),
                    ("checkout_url", &card.checkout_url),
                ] {
                    let host = url
                        .strip_prefix("http://")
                        .map(|rest| rest.split(['/', ':']).next().unwrap_or(""));
                    if host.is_some_and(|h| !matches!(h, "127.0.0.1" | "localhost" | "[")) {
                        println!(
                            "warning  {}: {key} {url} is plain http: the provider's answers \
                             could be forged on the way; use https",
                            s.name
                        );
                    }
                }
                if matches!(
                    &card.credentials,
                    paysys::config::Credentials::Monobank { pubkey: None, .. }
                ) {
                    println!(
                        "warning  {}: no pubkey: Monobank's key is fetched from {}/api/merchant/pubkey \
                         (with the token) at the first webhook and cached in {}, fetched again \
                         when it stops verifying; a webhook that comes while the API cannot be \
                         reached is answered 503 and posted again; set pubkey to what that \
                         address answers to do without the fetch",
                        s.name,
                        card.api_url,
                        paysys::card::pubkey::cache_path(&c.base, &s.name).display()
                    );
                }
            }
            let card_systems: Vec<&paysys::config::System> =
                c.systems.iter().filter(|s| s.card().is_some()).collect();
            for (everybody, never) in paysys::card::merchant::shadowed(&card_systems) {
                println!(
                    "warning  {}: never chosen: {} comes before it in the config and takes \
                     every subscriber (no groups or accounts); the first merchant that takes \
                     a subscriber is chosen, so move the one for everybody last",
                    never.name, everybody.name
                );
            }
            let (largest, column) = c.database.billing.largest_payment();
            for s in c
                .systems
                .iter()
                .filter(|s| !s.limits.max_sum_none && s.max_sum > largest)
            {
                println!(
                    "warning  {}: max_sum {} is more than {column} holds ({largest}): a larger \
                     sum cannot be written; max_sum = \"none\" accepts what it holds",
                    s.name, s.max_sum
                );
            }
            if c.page.public_url.is_none() && c.systems.iter().any(|s| s.protocol.card()) {
                println!(
                    "warning  [page] has no public_url: the card providers' callback and \
                     return URLs are built from each request's Host header; set public_url \
                     to how the world reaches paysys_check.cgi"
                );
            }
            for (first, second) in paysys::config::overlapping_systems(&c.systems) {
                println!(
                    "warning  systems {first} and {second} admit some of the same addresses: \
                     paysys_check.cgi takes such a caller for {first} (the first in the config)"
                );
            }
            println!("ok");
            ExitCode::SUCCESS
        }
    }
}

/// A system's sum limits and txn_date window, each with where it comes from, so that an
/// admin sees why a payment is refused (242, nod9; 300, nod12) before a terminal does.
fn limits(s: &paysys::config::System, billing: config::BillingKind) -> String {
    let from = |places: &[paysys::config::Place], default: &str| match places.last() {
        Some(place) => place.to_string(),
        None => default.to_string(),
    };
    let max = if s.limits.max_sum_none {
        let (_, column) = billing.largest_payment();
        format!(
            "max_sum none: up to {}, the most {column} holds ({})",
            s.max_sum,
            from(&s.limits.max_sum, "")
        )
    } else {
        format!(
            "max_sum {} ({})",
            s.max_sum,
            from(
                &s.limits.max_sum,
                "the default; max_sum = \"none\" for no limit"
            )
        )
    };
    format!(
        "min_sum {} ({}); {max}; txn_window_hours {} ({}): a pay whose txn_date is further from \
         the server's clock is refused (nod12)",
        s.min_sum,
        from(&s.limits.min_sum, "the default"),
        s.txn_window_hours,
        from(&s.limits.txn_window_hours, "the default"),
    )
}

/// `paysys import-abills [CONFIG]`: exit 0 printed, 1 config or database error, 2 usage.
fn import_abills(path: Option<PathBuf>) -> ExitCode {
    let path = config_path(path);
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The header names the file to write: /usr/abills/etc/…, not …/cgi-bin/../etc/….
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    match paysys::abills_import::import(&config, &path) {
        Ok((overlay, summary)) => {
            print!("{overlay}");
            eprintln!("paysys: {summary}");
            if config.database.billing != config::BillingKind::Abills {
                eprintln!(
                    "paysys: note: {} has database.billing = \"{}\"; the systems' ABillS keys \
                     take effect with billing = \"abills\"",
                    path.display(),
                    config.database.billing.name()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paysys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn code(ids: &[String]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for id in ids {
        match id.parse::<u64>() {
            Ok(n) if n > 0 => println!("{id}\t{}", PaymentCode::for_id(n)),
            _ => {
                eprintln!("paysys: '{id}' is not a subscriber id");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

/// `paysys txn TXN_ID [--system S] [--config CONFIG]` and
/// `paysys txn --account A [--from DATE] [--system S] [--config CONFIG]`.
fn txn(args: &[String]) -> ExitCode {
    let usage = || {
        eprintln!("{TXN_USAGE}");
        ExitCode::from(2)
    };
    let mut txn_id: Option<String> = None;
    let (mut account, mut from, mut system, mut config) = (None, None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let slot = match arg.as_str() {
            "--system" => &mut system,
            "--config" => &mut config,
            "--account" => &mut account,
            "--from" => &mut from,
            "-h" | "--help" => {
                println!("{TXN_USAGE}");
                return ExitCode::SUCCESS;
            }
            other if txn_id.is_none() && !other.starts_with('-') => {
                txn_id = Some(other.to_string());
                continue;
            }
            _ => return usage(),
        };
        match rest.next() {
            Some(value) => *slot = Some(value.clone()),
            None => return usage(),
        }
    }
    let query = match (txn_id, account) {
        // OSMP's digits, or another protocol's id (a card order's id).
        (Some(t), None) => match paysys::domain::TxnId::parse(&t)
            .or_else(|_| paysys::domain::TxnId::parse_token(&t))
        {
            Ok(t) => Query::Txn(t),
            Err(e) => {
                eprintln!("paysys: '{t}': {e}");
                return ExitCode::from(2);
            }
        },
        (None, Some(a)) if !a.is_empty() => {
            let since = match from.as_deref() {
                None => (chrono::Local::now() - chrono::Duration::days(31)).date_naive(),
                Some(text) => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                    Ok(d) => d,
                    Err(_) => {
                        eprintln!("paysys: --from '{text}' is not a date YYYY-MM-DD");
                        return ExitCode::from(2);
                    }
                },
            };
            Query::Account(a, since)
        }
        _ => return usage(),
    };
    let config = match Config::load(&config_path(config.map(PathBuf::from))) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::from(2);
        }
    };
    let mut conn = match paysys::db::connect(&config.database, paysys::db::Use::Read) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: database: {e}");
            return ExitCode::from(2);
        }
    };
    let found = match &query {
        Query::Txn(t) => paysys::ledger::lookup(&mut conn, t, system.as_deref()),
        Query::Account(a, since) => {
            paysys::ledger::lookup_account(&mut conn, a, *since, system.as_deref(), 1000)
        }
    };
    let rows = match found {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("paysys: database: {e}");
            return ExitCode::from(2);
        }
    };
    let scope = system
        .as_deref()
        .map(|s| format!(" of system {s}"))
        .unwrap_or_default();
    // A card order of that id: its state, whatever became of its payment.
    if let Query::Txn(t) = &query {
        match paysys::card::order::lookup(&mut conn, t.as_str(), system.as_deref()) {
            Ok(orders) => {
                for o in orders {
                    println!(
                        "card order {} of system {}: {}",
                        o.order_id, o.system, o.state
                    );
                    println!("  paysys_order");
                    print_fields(&order_fields(&o));
                }
            }
            Err(e) => println!("card orders cannot be read: {e}"),
        }
    }
    if rows.is_empty() {
        match &query {
            Query::Txn(t) => println!(
                "not committed: no payment with txn_id {t}{scope} in paysys_txn; \
                 nothing was credited for it, and its next pay will be"
            ),
            Query::Account(a, since) => {
                println!("no payment to account {a}{scope} committed since {since}")
            }
        }
    }
    let billing = paysys::billing::of(config.database.billing);
    for row in &rows {
        println!(
            "committed: txn_id {} of system {}{}",
            row.txn_id,
            row.system,
            if row.cancelled.is_some() {
                ", cancelled since"
            } else {
                ""
            }
        );
        println!("  paysys_txn");
        print_fields(
            &row.fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Vec<_>>(),
        );
        // The billing's own rows, as the system is configured now.
        let Some(sys) = config.system(&row.system) else {
            println!(
                "  (system {} is no longer in the config: the billing's rows are not looked up)",
                row.system
            );
            continue;
        };
        match billing.payment_rows(&mut conn, sys, &row.txn_id, row.payment_ref, row.prv_txn) {
            Ok(billing_rows) if billing_rows.is_empty() => {
                println!(
                    "  no {} row of this payment (removed?)",
                    billing.kind().name()
                )
            }
            Ok(billing_rows) => {
                for b in billing_rows {
                    println!("  {}", b.table);
                    print_fields(&b.fields);
                }
            }
            Err(e) => println!("  the billing's rows cannot be read: {e}"),
        }
    }
    let field = match &query {
        Query::Txn(t) => format!("txn={t}"),
        Query::Account(a, _) => format!("account={a}"),
    };
    match paysys::journal::lines_with(&config.log.file, &field, system.as_deref()) {
        Ok(lines) if lines.is_empty() => {
            println!("log {}: no line with {field}", config.log.file.display())
        }
        Ok(lines) => {
            println!("log {}:", config.log.file.display());
            for line in lines {
                println!("  {line}");
            }
        }
        Err(e) => println!("log {}: cannot be read: {e}", config.log.file.display()),
    }
    if rows.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A card order's fields, for `paysys txn`.
fn order_fields(o: &paysys::card::order::Listed) -> Vec<(String, String)> {
    [
        ("id", o.id.to_string()),
        ("system_name", o.system.clone()),
        ("order_id", o.order_id.clone()),
        ("account", o.account.clone()),
        ("amount", o.amount.clone()),
        ("charged", o.charged.clone()),
        ("currency", o.currency.clone()),
        ("state", o.state.clone()),
        ("created", o.created.clone()),
        ("updated", o.updated.clone()),
        ("valid_until", o.valid_until.clone()),
        ("provider_ref", o.provider_ref.clone()),
        ("provider_status", o.provider_status.clone()),
        ("note", o.note.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `paysys sweep [CONFIG]`: exit 0 it ran, 1 an error.
#[cfg(feature = "sweep")]
fn sweep(path: Option<PathBuf>) -> ExitCode {
    let config = match Config::load(&config_path(path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::FAILURE;
        }
    };
    let api = paysys::card::sweep::Http::new(std::time::Duration::from_secs(20));
    let mut conns = paysys::db::Connections::persistent();
    let summary = paysys::card::sweep::sweep(&config, &api, &mut conns, &mut |change| {
        println!("{change}")
    });
    for why in &summary.not_askable {
        eprintln!("paysys sweep: not asked: {why}");
    }
    for why in &summary.errors {
        eprintln!("paysys sweep: {why}");
    }
    println!("{summary}");
    if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `paysys orders [--state S] [--from D] [--to D] [--system S] [CONFIG]`.
fn orders(args: &[String]) -> ExitCode {
    let usage = || {
        eprintln!("{ORDERS_USAGE}");
        ExitCode::from(2)
    };
    let (mut state, mut from, mut to, mut system, mut config) = (None, None, None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let slot = match arg.as_str() {
            "--state" => &mut state,
            "--from" => &mut from,
            "--to" => &mut to,
            "--system" => &mut system,
            "-h" | "--help" => {
                println!("{ORDERS_USAGE}");
                return ExitCode::SUCCESS;
            }
            other if config.is_none() && !other.starts_with('-') => {
                config = Some(PathBuf::from(other));
                continue;
            }
            _ => return usage(),
        };
        match rest.next() {
            Some(value) if slot.is_none() => *slot = Some(value.clone()),
            _ => return usage(),
        }
    }
    const STATES: &[&str] = &[
        "waiting", "paid", "failed", "expired", "reversed", "mismatch",
    ];
    if let Some(s) = state.as_deref().filter(|s| !STATES.contains(s)) {
        eprintln!("paysys: --state '{s}': one of {}", STATES.join(", "));
        return ExitCode::from(2);
    }
    let day = |name: &str, text: Option<&String>| match text {
        None => Ok(None),
        Some(t) => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{name} '{t}' is not a date YYYY-MM-DD")),
    };
    let (from, to) = match (day("--from", from.as_ref()), day("--to", to.as_ref())) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("paysys: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(&config_path(config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::from(2);
        }
    };
    let mut conn = match paysys::db::connect(&config.database, paysys::db::Use::Read) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: database: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = paysys::card::order::Filter {
        state,
        system,
        from,
        to,
    };
    let listed = match paysys::card::order::list(&mut conn, &filter, 10_000) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("paysys: database: {e}");
            return ExitCode::from(2);
        }
    };
    println!("id\tsystem\torder_id\taccount\tsum\tstate\tcreated\tupdated\tvalid_until\tprovider_status\tnote");
    for o in &listed {
        let sum = if o.charged != o.amount {
            format!("{} (charged {} {})", o.amount, o.charged, o.currency)
        } else {
            format!("{} {}", o.amount, o.currency)
        };
        println!(
            "{}\t{}\t{}\t{}\t{sum}\t{}\t{}\t{}\t{}\t{}\t{}",
            o.id,
            o.system,
            o.order_id,
            o.account,
            o.state,
            o.created,
            o.updated,
            o.valid_until,
            o.provider_status,
            o.note
        );
    }
    eprintln!("paysys: {} orders", listed.len());
    ExitCode::SUCCESS
}

/// One row's fields, a line each, the values lined up.
fn print_fields(fields: &[(String, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    for (key, value) in fields {
        println!("    {key:<width$}{value}");
    }
}

/// What `paysys txn` looks for.
enum Query {
    Txn(paysys::domain::TxnId),
    Account(String, chrono::NaiveDate),
}

/// The `--help` of the commands that take no options.
fn own_usage(command: &str) -> &'static str {
    match command {
        "check-config" => CHECK_CONFIG_USAGE,
        "check-db" => CHECK_DB_USAGE,
        "import-abills" => IMPORT_ABILLS_USAGE,
        "code" => CODE_USAGE,
        "sweep" => SWEEP_USAGE,
        _ => USAGE,
    }
}

const CHECK_CONFIG_USAGE: &str = "usage: paysys check-config [CONFIG]
  Reads the config as the CGIs would: CONFIG (default: $PAYSYS_CONFIG, or ../etc/paysys.toml
  next to this program) and the overlays in its paysys.d/, in name order. Prints the files
  read, the billing, the log and each payment system with its protocol, account key, sums
  and window, then its limits line: min_sum, max_sum (\"none\": up to the most the billing's
  payment row holds) and txn_window_hours, each with the file and line that set it or \"the
  default\". Warns of a system nobody can call (empty allow list) and of systems whose
  allow lists overlap; or names the first error with its file, line and key.
  Exit 0: the config is valid; 1: it is not.";

const CHECK_DB_USAGE: &str = "usage: paysys check-db [CONFIG]
  Connects to the database as the CGIs would (CONFIG as for check-config) and checks the
  billing's tables and ours (paysys_txn, paysys_refusal): present, transactional (InnoDB),
  paysys_txn's UNIQUE key in place; on NoDeny also the grants a pay and a cancel need (pays:
  SELECT, INSERT, DELETE). Each problem found says how to fix it.
  Exit 0: all in place; 1: a problem, or the config or the database cannot be read.";

const IMPORT_ABILLS_USAGE: &str = "usage: paysys import-abills [CONFIG]
  Prints the payment systems set up in ABillS's web interface (its paysys_connect table, in
  the config's database) as a paysys.d/ overlay: a [[system]] for each enabled one, with its
  protocol, the addresses ABillS admitted, its ABillS id, payment method and transaction
  prefix, and its limits written out with what ABillS did (min_sum \"0.01\", max_sum
  \"none\": ABillS had no limit; txn_window_hours 24: ABillS ignored txn_date, paysys keeps
  its window); limits another file already sets for the system are left to it. What cannot
  be carried over is printed as a comment. A summary goes to stderr.
    paysys import-abills > /usr/abills/etc/paysys.d/50-abills.toml
  Exit 0: printed; 1: config or database error; 2: usage.";

const CODE_USAGE: &str = "usage: paysys code ID...
  Prints each NoDeny subscriber id with its personal payment code, the account a subscriber
  types on a terminal: the id and a check digit (5907 -> 59071).
  Exit 0: all printed; 1: an ID is not a subscriber id; 2: no ID given.";

const SWEEP_USAGE: &str = "usage: paysys sweep [CONFIG]
  For every card order still waiting (paysys_order state waiting), asks its provider's
  status API (LiqPay status, Monobank invoice status, WayForPay CHECK_STATUS; 20 s at most
  per request) and settles the answer exactly as the provider's callback would be: a
  success credits the order once (a callback or another sweep that got there first is
  found, nothing more is credited), a failure, expiry or reversal is noted. A payment in
  progress, or no payment yet, leaves the order waiting until its validity
  (validity_hours, default 24) ends; then it is asked one last time and, unless paid,
  becomes expired. Prints one line per order changed:
    <order id> <system> <account> <sum> waiting → paid (prv_txn N)   (or failed →, asked
    again within its validity: a second attempt may have paid)
  then a summary line; errors go to stderr. Each settled order writes its line in the log
  (cmd=sweep). Safe to run every minute (etc/systemd/paysys-sweep.timer, or cron) while
  callbacks arrive. Exit 0: it ran; 1: an error (config, database, a provider that did not
  answer or refused; the other orders were still swept).";

const ORDERS_USAGE: &str =
    "usage: paysys orders [--state S] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--system S] [CONFIG]
  Lists the card orders (paysys_order), oldest first, at most 10000: id, system, order id,
  account, sum credited (and charged, when a commission was added), state (waiting, paid,
  failed, expired, reversed, mismatch), created, last change, valid until, the provider's
  last word and the admin's note. --state: only orders in state S; --from/--to: created on
  or after/before these days; --system: only system S's.
  Exit 0: listed (also none); 2: usage, config or database error.";

const TXN_USAGE: &str = "usage: paysys txn TXN_ID [--system S] [--config CONFIG]
       paysys txn --account A [--from YYYY-MM-DD] [--system S] [--config CONFIG]
  Everything known about a payment: our paysys_txn row (the truth: committed or not), the
  billing's rows (NoDeny pays; ABillS payments and paysys_log) and its lines in the log.
  TXN_ID may also be a card order's id (as the provider knows it): the order is shown too.
  With --account: the payments to account A (as typed) since --from (default: 31 days
  ago), at most 1000. Exit 0: found; 1: nothing committed; 2: usage, config or database error.";

const PAYPRO_USAGE: &str =
    "usage: paysys paypro-provider --url URL [--number N] [--name NAME] [--cp1251]
  Prints the PayPRO own-provider description (MyProviders.ini) that makes a PayPRO terminal
  pre-check (URL?command=check) and pay (URL?command=pay) through the endpoint at URL, and
  show the payer the balance and name from the pre-check's answer. UTF-8 with LF; with
  --cp1251 in Windows-1251 with CRLF, as PayPRO's own files are:
    paysys paypro-provider --url https://billing.example.net/cgi-bin/osmp.cgi --cp1251 > MyProviders.ini
  --number: the own provider's number (default 1; the terminal shows it as -N);
  --name: its name on the terminal's screen and receipt. Exit 0 printed, 2 usage.";

const EASYPAY_USAGE: &str =
    "usage: paysys easypay-verify REQUEST.xml --certificate FILE [--sign sha1|sha256]
       paysys easypay-verify REQUEST.xml --system S [--config CONFIG]
  Checks a request EasyPay sent (captured whole, as received) against the certificate
  EasySoft issued, as paysys_check.cgi would: the RSA signature in <Sign> over the document
  with that element emptied, SHA-1 unless --sign sha256. With --system: the certificate and
  sign of that [[system]] of the config. Prints what was checked and the verdict.
  Exit 0 it verifies, 1 it does not, 2 usage, an unreadable file or certificate.";

/// `paysys easypay-verify REQUEST.xml (--certificate FILE [--sign H] | --system S)`.
fn easypay_verify(args: &[String]) -> ExitCode {
    use paysys::config::SignHash;
    use paysys::protocol::easypay;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{EASYPAY_USAGE}");
        return ExitCode::SUCCESS;
    }
    let fail = |why: String| {
        eprintln!("paysys easypay-verify: {why}");
        ExitCode::from(2)
    };
    let (mut file, mut cert, mut hash, mut system, mut config) = (None, None, None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = |rest: &mut std::slice::Iter<String>| rest.next().cloned();
        match arg.as_str() {
            "--certificate" => cert = value(&mut rest).map(PathBuf::from),
            "--system" => system = value(&mut rest),
            "--config" => config = value(&mut rest).map(PathBuf::from),
            "--sign" => {
                hash = match value(&mut rest).as_deref() {
                    Some("sha1") => Some(SignHash::Sha1),
                    Some("sha256") => Some(SignHash::Sha256),
                    _ => return fail(format!("--sign: sha1 or sha256\n{EASYPAY_USAGE}")),
                }
            }
            a if !a.starts_with('-') && file.is_none() => file = Some(PathBuf::from(a)),
            _ => return fail(EASYPAY_USAGE.to_string()),
        }
    }
    let Some(file) = file else {
        return fail(EASYPAY_USAGE.to_string());
    };
    let (cert, hash) = match (cert, system) {
        (Some(c), None) => (c, hash.unwrap_or(SignHash::Sha1)),
        (None, Some(name)) => {
            let c = match Config::load(&config_path(config)) {
                Ok(c) => c,
                Err(e) => return fail(e.to_string()),
            };
            match c.system(&name).map(|s| s.rsa().cloned()) {
                Some(Some(rule)) => (rule.certificate, hash.unwrap_or(rule.hash)),
                Some(None) => {
                    return fail(format!(
                        "system '{name}' has no certificate (is it protocol = \"easypay\"?)"
                    ))
                }
                None => return fail(format!("no system '{name}' in the config")),
            }
        }
        _ => return fail(format!("--certificate FILE or --system S\n{EASYPAY_USAGE}")),
    };
    let body = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let key = match easypay::load_certificate(&cert) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let Some((signed, hex)) = easypay::signed_part(&body) else {
        println!("no: {} has no <Sign>…</Sign>", file.display());
        return ExitCode::FAILURE;
    };
    let name = if hash == SignHash::Sha256 {
        "SHA-256"
    } else {
        "SHA-1"
    };
    println!(
        "checked: {} bytes of {} with <Sign> emptied, a {}-character signature, RSA PKCS#1 v1.5 with {name}, against {}",
        signed.len(),
        file.display(),
        hex.len(),
        cert.display()
    );
    match easypay::verify(&key, hash, &signed, &hex) {
        Ok(()) => {
            println!("yes: the request verifies");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("no: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `paysys paypro-provider --url URL [--number N] [--name NAME] [--cp1251]`.
fn paypro_provider(args: &[String]) -> ExitCode {
    let usage = || {
        eprintln!("{PAYPRO_USAGE}");
        ExitCode::from(2)
    };
    let (mut url, mut number, mut name, mut cp1251) = (None, None, None, false);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let slot = match arg.as_str() {
            "--url" => &mut url,
            "--number" => &mut number,
            "--name" => &mut name,
            "--cp1251" => {
                cp1251 = true;
                continue;
            }
            "-h" | "--help" => {
                println!("{PAYPRO_USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        };
        match rest.next() {
            Some(value) if slot.is_none() => *slot = Some(value.clone()),
            _ => return usage(),
        }
    }
    let Some(url) = url else { return usage() };
    let number = match number.as_deref().map(str::parse::<u32>) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            eprintln!("paysys: --number must be a whole number from 1");
            return ExitCode::from(2);
        }
    };
    let text = match paysys::paypro::own_provider(&url, number, name.as_deref()) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("paysys: {e}");
            return ExitCode::from(2);
        }
    };
    let bytes = if cp1251 {
        match paysys::paypro::encode_cp1251(&text.replace('\n', "\r\n")) {
            Ok(bytes) => bytes,
            Err(c) => {
                eprintln!("paysys: '{c}' cannot be written in Windows-1251: choose another --name");
                return ExitCode::from(2);
            }
        }
    } else {
        text.into_bytes()
    };
    use std::io::Write;
    match std::io::stdout().lock().write_all(&bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paysys: cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}
