//! `paysys statement`: bank statements, credited once, and the queue of rows that could
//! not be matched.
//!
//! * `import FILE… [--bank NAME | --account IBAN] [--format F] [--dry-run] [--config CONFIG]` — reads each
//!   file (1CClientBankExchange, PrivatBank Autoclient JSON, Monobank JSON, or CSV by a
//!   `[[statement.csv]]` preset: `--format csv:<preset>`), the format detected unless
//!   given, and credits its rows ([`crate::statement::import`]).
//! * `list [--unmatched|--settlements|--all] [--from D] [--bank NAME]` — the rows kept,
//!   numbered; by default those waiting for the admin.
//! * `assign ROW ACCOUNT` — credits a waiting row to an account, once.
//! * `ignore ROW --reason TEXT [--by-hand]` — closes a waiting row without a credit
//!   (`--by-hand`: it was credited in the billing by hand before).
//! * `pull [--bank NAME] [--from YYYY-MM-DD]` — fetches the statements of the banks with an
//!   API (privat, monobank) and credits their rows as `import` does
//!   ([`crate::statement::pull`]); run every 10 minutes by
//!   `etc/systemd/paysys-statement.timer`. For tests only, the environment variable
//!   `PAYSYS_TEST_MONOBANK_INTERVAL_MS` replaces the minute Monobank wants between two
//!   statement calls (a stand-in on loopback does not need a minute; Monobank does, and
//!   answers 429 sooner).
//!
//! Exit codes: 0 done; 1 a file, the database or a row failed (the rest were still done);
//! 2 usage.

use std::fs::File;
use std::io::{BufReader, Read as _};
use std::path::{Path, PathBuf};

use crate::billing;
use crate::config::{Config, ProtocolKind, System};
use crate::db::{Connections, Use};
use crate::domain::{Account, Domain};
use crate::statement::import::{self, Options, Summary};
use crate::statement::store::{self, Decision, Filter, State};
use crate::statement::{csv, detect, monobank, onec, privat, Format, RowError, StatementRow};

pub const USAGE: &str = "usage: paysys statement import FILE... [--bank NAME | --account IBAN] [--format F] [--dry-run] [--config CONFIG]
       paysys statement list [--unmatched | --settlements | --all] [--from YYYY-MM-DD] [--bank NAME] [--config CONFIG]
       paysys statement assign ROW ACCOUNT [--admin NAME] [--config CONFIG]
       paysys statement ignore ROW --reason TEXT [--by-hand] [--admin NAME] [--config CONFIG]
       paysys statement pull [--bank NAME] [--from YYYY-MM-DD] [--config CONFIG]
  import: credits the credit rows of bank statements to subscribers, once whatever files
    overlap, by the [[statement.rule]]s of the config; rows that no rule matches to exactly
    one subscriber wait in the queue. --bank: the [[statement.bank]] the files are of, or
    --account: its iban (neither is needed when the config has one bank, or when a 1C file
    or a PrivatBank page names the account's IBAN). --format:
    onec, privat, monobank or csv:<preset>; detected when not given (CSV needs it).
    --dry-run: says what it would do, writes nothing. One line per row, then a summary.
  list: the rows kept, numbered (ROW), with state and reason; by default those waiting for
    the admin (unmatched, ambiguous).
  assign: credits waiting ROW (its number, or the bank's row id) to ACCOUNT, once.
  ignore: closes waiting ROW without a credit; --by-hand: it was credited in the billing
    by hand already.
  pull: fetches the statements of the [[statement.bank]]s with bank = privat or monobank
    (--bank: that one only) from the bank's API and credits them as import does. Starts a
    day before where the last pull got to (paysys_statement_pull), else at --from, else 7
    days ago; --from given always wins. A bank that fails (unreachable, token refused, a
    broken page, the database) is named on stderr and fetched again from the window that
    failed on the next run; rows of pages imported before stay credited, once.
  CONFIG: --config PATH, or a last argument ending in .toml; default as for check-config.
  Exit 0: done; 1: a file, the database or a row failed (the rest were done); 2: usage.";

/// Runs `paysys statement …`; the exit code.
pub fn command(args: &[String], config_path: impl Fn(Option<PathBuf>) -> PathBuf) -> u8 {
    let usage = |why: &str| {
        if !why.is_empty() {
            eprintln!("paysys statement: {why}");
        }
        eprintln!("{USAGE}");
        2
    };
    let Some(sub) = args.first() else {
        return usage("");
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    // Options with a value, flags, and the positional rest.
    let mut values: Vec<(&str, String)> = Vec::new();
    let mut flags: Vec<&str> = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut config: Option<PathBuf> = None;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--bank" | "--account" | "--format" | "--from" | "--reason" | "--admin" => {
                let Some(value) = rest.next() else {
                    return usage(&format!("{arg} needs a value"));
                };
                values.push((arg.as_str(), value.clone()));
            }
            "--config" | "-c" => match rest.next() {
                Some(value) => config = Some(PathBuf::from(value)),
                None => return usage("--config needs a path"),
            },
            "--dry-run" | "--unmatched" | "--settlements" | "--all" | "--by-hand" => {
                flags.push(arg.as_str())
            }
            other if other.starts_with('-') && other.len() > 1 => {
                return usage(&format!("unknown option {other}"))
            }
            other => positional.push(other.to_string()),
        }
    }
    if config.is_none() && positional.last().is_some_and(|p| p.ends_with(".toml")) {
        config = positional.pop().map(PathBuf::from);
    }
    let value = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let config = match Config::load(&config_path(config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys: {e}");
            return 1;
        }
    };
    let admin = value("--admin").unwrap_or_else(admin_name);
    match sub.as_str() {
        "import" if !positional.is_empty() => {
            let bank = match (value("--bank"), value("--account")) {
                (Some(_), Some(_)) => return usage("--bank or --account, not both"),
                (None, Some(iban)) => match bank_of_iban(&config, &iban) {
                    Ok(name) => Some(name),
                    Err(why) => {
                        eprintln!("paysys statement: {why}");
                        return 1;
                    }
                },
                (bank, None) => bank,
            };
            import_files(
                &config,
                &positional,
                bank.as_deref(),
                value("--format").as_deref(),
                flags.contains(&"--dry-run"),
            )
        }
        "import" => usage("import needs a file"),
        "list" => {
            let states = if flags.contains(&"--all") {
                Vec::new()
            } else if flags.contains(&"--settlements") {
                vec![State::Settlement]
            } else {
                vec![State::Unmatched, State::Ambiguous]
            };
            let from = match value("--from") {
                None => None,
                Some(t) => match chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
                    Ok(d) => Some(d),
                    Err(_) => return usage(&format!("--from '{t}' is not a date YYYY-MM-DD")),
                },
            };
            list(
                &config,
                &Filter {
                    states,
                    from,
                    bank: value("--bank"),
                },
            )
        }
        "assign" if positional.len() == 2 => {
            assign(&config, &positional[0], &positional[1], &admin)
        }
        "assign" => usage("assign needs ROW and ACCOUNT"),
        "ignore" if positional.len() == 1 => match value("--reason") {
            Some(reason) if !reason.trim().is_empty() => ignore(
                &config,
                &positional[0],
                &reason,
                flags.contains(&"--by-hand"),
                &admin,
            ),
            _ => usage("ignore needs --reason TEXT"),
        },
        "ignore" => usage("ignore needs ROW"),
        "pull" if positional.is_empty() => {
            let from = match value("--from") {
                None => None,
                Some(t) => match chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
                    Ok(d) => Some(d),
                    Err(_) => return usage(&format!("--from '{t}' is not a date YYYY-MM-DD")),
                },
            };
            pull(&config, value("--bank").as_deref(), from)
        }
        "pull" => usage(&format!("pull takes no argument '{}'", positional[0])),
        other => usage(&format!("unknown command '{other}'")),
    }
}

/// `paysys statement pull`: every API bank (or `--bank`'s), one after the other; exit 1
/// when any failed or had rows that cannot be read.
#[cfg(feature = "pull")]
fn pull(config: &Config, named: Option<&str>, from: Option<chrono::NaiveDate>) -> u8 {
    use crate::config::BankKind;
    use crate::statement::pull::{self as pulling, Pacer};

    let api_bank = |b: &&System| {
        b.statement()
            .is_some_and(|s| matches!(s.bank, BankKind::Privat | BankKind::Monobank))
    };
    let chosen: Vec<&System> = match named {
        Some(name) => match banks(config).into_iter().find(|b| b.name == name) {
            None => {
                eprintln!(
                    "paysys statement pull: --bank {name}: no [[statement.bank]] of that name"
                );
                return 1;
            }
            Some(b) if !api_bank(&b) => {
                eprintln!(
                    "paysys statement pull: bank {name} is bank = \"file\": it has no API; import \
                     its files with paysys statement import"
                );
                return 1;
            }
            Some(b) => vec![b],
        },
        None => banks(config).into_iter().filter(api_bank).collect(),
    };
    if chosen.is_empty() {
        eprintln!(
            "paysys statement pull: the config has no [[statement.bank]] with bank = \"privat\" \
             or \"monobank\": nothing to pull"
        );
        return 1;
    }
    // Tests' stand-ins need no minute between Monobank calls (see the module's docs).
    let interval = std::env::var("PAYSYS_TEST_MONOBANK_INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(pulling::MONOBANK_INTERVAL, std::time::Duration::from_millis);
    let mut pacer = Pacer::new(interval);
    let api = pulling::Http::new(std::time::Duration::from_secs(30));
    let mut conns = Connections::persistent();
    let options = pulling::Options {
        from,
        now: chrono::Local::now().naive_local(),
    };
    let mut failed = false;
    for bank in chosen {
        let name = bank.name.clone();
        let mut print = |line: &import::Line| println!("{name}: {line}");
        match pulling::pull(
            config, bank, &api, &options, &mut pacer, &mut conns, &mut print,
        ) {
            Ok(done) => {
                let to = done.pulled_to.map_or_else(
                    || "never".to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
                );
                println!(
                    "{}: {} calls; {}; pulled to {to}",
                    bank.name, done.calls, done.summary
                );
                if done.summary.unreadable > 0 {
                    eprintln!(
                        "paysys statement pull: {}: {} rows could not be read (listed above): \
                         not credited; they are fetched again only within a day's overlap",
                        bank.name, done.summary.unreadable
                    );
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("paysys statement pull: {}: {e}", bank.name);
                failed = true;
            }
        }
    }
    u8::from(failed)
}

#[cfg(not(feature = "pull"))]
fn pull(_config: &Config, _named: Option<&str>, _from: Option<chrono::NaiveDate>) -> u8 {
    eprintln!("paysys statement pull: this paysys was built without the `pull` feature");
    1
}

/// The admin who runs the command, for the rows closed by hand: `SUDO_USER`, else `USER`.
fn admin_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "admin".into())
}

/// The config's statement banks.
fn banks(config: &Config) -> Vec<&System> {
    config
        .systems
        .iter()
        .filter(|s| s.protocol == ProtocolKind::Statement)
        .collect()
}

/// The `[[statement.bank]]` whose `iban` is `iban` (spaces and letter case aside).
fn bank_of_iban(config: &Config, iban: &str) -> Result<String, String> {
    let wanted: String = iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    banks(config)
        .into_iter()
        .find(|b| b.statement().and_then(|s| s.iban.as_deref()) == Some(wanted.as_str()))
        .map(|b| b.name.clone())
        .ok_or_else(|| format!("--account {wanted}: no [[statement.bank]] has this iban"))
}

/// The bank the files are of: `--bank`, else the only one, else the one whose IBAN the
/// file names (1C's РасчСчет).
fn pick_bank<'c>(
    config: &'c Config,
    named: Option<&str>,
    file_accounts: &[String],
) -> Result<&'c System, String> {
    let all = banks(config);
    if all.is_empty() {
        return Err(
            "the config has no [[statement.bank]]: add one for the account (INSTALL, \
                    bank statements)"
                .into(),
        );
    }
    if let Some(name) = named {
        return all
            .into_iter()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("--bank {name}: no [[statement.bank]] of that name"));
    }
    if all.len() == 1 {
        return Ok(all[0]);
    }
    let by_iban: Vec<&System> = all
        .iter()
        .copied()
        .filter(|b| {
            b.statement()
                .and_then(|s| s.iban.as_ref())
                .is_some_and(|iban| file_accounts.contains(iban))
        })
        .collect();
    match by_iban.as_slice() {
        [one] => Ok(one),
        _ => Err(format!(
            "the config has {} statement banks: say which with --bank ({})",
            all.len(),
            all.iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn import_files(
    config: &Config,
    files: &[String],
    bank: Option<&str>,
    format: Option<&str>,
    dry_run: bool,
) -> u8 {
    let mut conns = Connections::persistent();
    let mut total = Summary::default();
    let mut failed = false;
    for file in files {
        let path = Path::new(file);
        match import_file(config, path, bank, format, dry_run, &mut conns) {
            Ok(summary) => {
                println!("{file}: {summary}");
                failed |= summary.failed > 0;
                total.add(&summary);
            }
            Err(why) => {
                eprintln!("paysys statement: {file}: {why}");
                failed = true;
            }
        }
    }
    if files.len() > 1 {
        println!("all files: {total}");
    }
    if dry_run {
        println!("dry run: nothing was written");
    }
    u8::from(failed)
}

/// Reads one file and imports its rows; the file's summary.
fn import_file(
    config: &Config,
    path: &Path,
    bank: Option<&str>,
    format: Option<&str>,
    dry_run: bool,
    conns: &mut Connections,
) -> Result<Summary, String> {
    let open = || File::open(path).map_err(|e| format!("cannot be read: {e}"));
    let mut head = Vec::with_capacity(4096);
    open()?
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let (format, preset) = match format {
        None => match detect(&head) {
            Some(f) => (f, None),
            None => {
                return Err(
                    "not a format paysys knows by its content (1C, PrivatBank or \
                            Monobank JSON): for a CSV export say --format csv:<preset>"
                        .into(),
                )
            }
        },
        Some("onec" | "1c") => (Format::OneC, None),
        Some("privat") => (Format::Privat, None),
        Some("monobank") => (Format::Monobank, None),
        Some(f) => match f.strip_prefix("csv:") {
            Some(name) => (Format::Csv, Some(csv_preset(config, name)?)),
            None => {
                return Err(format!(
                    "--format {f}: one of onec, privat, monobank, csv:<preset>"
                ))
            }
        },
    };
    let options = Options {
        dry_run,
        source: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let mut print = |line: &import::Line| println!("{line}");
    let whole = || -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        open()?
            .read_to_end(&mut body)
            .map_err(|e| format!("cannot be read: {e}"))?;
        Ok(body)
    };
    let run = |bank: &System,
               rows: &mut dyn Iterator<Item = Result<StatementRow, RowError>>,
               conns: &mut Connections,
               print: &mut dyn FnMut(&import::Line)| {
        import::import(config, bank, rows, &options, conns, print)
    };
    match format {
        Format::OneC => {
            let mut reader =
                onec::Reader::new(BufReader::new(open()?)).map_err(|e| e.to_string())?;
            let bank = pick_bank(config, bank, reader.our_accounts())?;
            if let Some(iban) = bank.statement().and_then(|s| s.iban.as_ref()) {
                reader.add_our_account(iban);
            }
            let summary = run(bank, &mut reader.by_ref(), conns, &mut print)?;
            // A file cut short, or a read that failed half way: said after its rows.
            reader
                .finish()
                .map_err(|e| format!("{e} (after {} rows)", summary.rows))?;
            Ok(summary)
        }
        Format::Csv => {
            let preset = preset.ok_or("a CSV file needs --format csv:<preset>")?;
            let bank = pick_bank(config, bank, &[])?;
            let mut reader =
                csv::Reader::new(BufReader::new(open()?), &preset).map_err(|e| e.to_string())?;
            let summary = run(bank, &mut reader.by_ref(), conns, &mut print)?;
            reader
                .finish()
                .map_err(|e| format!("{e} (after {} rows)", summary.rows))?;
            Ok(summary)
        }
        Format::Privat => {
            let page = privat::parse_page(&whole()?).map_err(|e| e.to_string())?;
            let accounts: Vec<String> = page
                .rows
                .iter()
                .filter_map(|r| r.as_ref().ok().and_then(|r| r.our_account.clone()))
                .collect();
            let bank = pick_bank(config, bank, &accounts)?;
            run(bank, &mut page.rows.into_iter(), conns, &mut print)
        }
        Format::Monobank => {
            let rows = monobank::parse(&whole()?).map_err(|e| e.to_string())?;
            let bank = pick_bank(config, bank, &[])?;
            run(bank, &mut rows.into_iter(), conns, &mut print)
        }
    }
}

/// The `[[statement.csv]]` preset `name`, checked.
fn csv_preset(config: &Config, name: &str) -> Result<csv::CsvPreset, String> {
    let Some(section) = config.statement.csv_preset(name) else {
        let known: Vec<&str> = config
            .statement
            .csv
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(format!(
            "no [[statement.csv]] preset named '{name}' (the config has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let preset: csv::CsvPreset = toml::Value::Table(section.table.clone())
        .try_into()
        .map_err(|e| {
            format!(
                "[[statement.csv]] '{name}' ({}:{}): {e}",
                section.path.display(),
                section.line
            )
        })?;
    preset.check().map_err(|e| {
        format!(
            "[[statement.csv]] '{name}' ({}:{}): {e}",
            section.path.display(),
            section.line
        )
    })?;
    Ok(preset)
}

fn list(config: &Config, filter: &Filter) -> u8 {
    let mut conns = Connections::per_request();
    let rows = conns
        .get(&config.database, Use::Read)
        .and_then(|conn| store::list(conn, filter, 10_000).map_err(|e| e.to_string()));
    match rows {
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            1
        }
        Ok(rows) => {
            for r in &rows {
                let whom = if r.account.is_empty() {
                    String::new()
                } else {
                    format!(" account={}", r.account)
                };
                let prv = r
                    .prv_txn
                    .map(|p| format!(" prv_txn={p}"))
                    .unwrap_or_default();
                println!(
                    "{:>6} {} {} {} {} {} {}{whom}{prv} payer=\"{}\" code={} purpose=\"{}\"{}",
                    r.id,
                    r.date,
                    r.bank,
                    r.row_id,
                    r.amount,
                    r.currency,
                    r.state.name(),
                    r.payer_name,
                    r.payer_code,
                    r.purpose,
                    if r.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" reason=\"{}\"", r.reason)
                    }
                );
            }
            println!("{} rows", rows.len());
            0
        }
    }
}

/// Credits waiting row `row_ref` to `account_text`, once: through the ledger under the
/// row's own id, so an import that later matches the row finds it paid.
fn assign(config: &Config, row_ref: &str, account_text: &str, admin: &str) -> u8 {
    let mut conns = Connections::persistent();
    let conn = match conns.get(&config.database, Use::Write) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            return 1;
        }
    };
    let row = match store::find_by_ref(conn, row_ref) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("paysys statement: no row {row_ref} (see paysys statement list)");
            return 1;
        }
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            return 1;
        }
    };
    if !row.state.open() {
        eprintln!(
            "paysys statement: row {} is {}, not waiting: nothing done",
            row.id,
            row.state.name()
        );
        return 1;
    }
    let Some(bank) = config
        .system(&row.bank)
        .filter(|s| s.protocol == ProtocolKind::Statement)
    else {
        eprintln!(
            "paysys statement: row {} is of bank '{}', which the config no longer has",
            row.id, row.bank
        );
        return 1;
    };
    let account = match Account::parse_by(account_text, &bank.account) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("paysys statement: account '{account_text}': {why}");
            return 1;
        }
    };
    let billing = billing::of(config.database.billing);
    match billing.find(conn, bank, &account, Domain::default()) {
        Ok(Ok(_)) => {}
        Ok(Err(refusal)) => {
            eprintln!(
                "paysys statement: account '{account_text}': {}",
                refusal.detail()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            return 1;
        }
    }
    let Ok(txn_id) = crate::domain::TxnId::parse_token(&row.txn_id) else {
        eprintln!("paysys statement: row {} has no usable txn id", row.id);
        return 1;
    };
    let when = chrono::NaiveDate::parse_from_str(&row.date, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN))
        .unwrap_or_else(|_| chrono::Local::now().naive_local());
    let params = vec![
        ("statement".to_string(), "assign".to_string()),
        ("row".to_string(), row.row_id.clone()),
        ("admin".to_string(), admin.to_string()),
    ];
    let outcome = import::credit(
        config,
        bank,
        &mut conns,
        &txn_id,
        &account,
        row.amount,
        when,
        params,
        vec![format!("assigned by {admin}")],
    );
    let prv_txn = match outcome {
        crate::outcome::Outcome::Paid { prv_txn, .. } => Some(prv_txn),
        other => {
            eprintln!(
                "paysys statement: row {} not credited: {}",
                row.id,
                other.detail().unwrap_or_else(|| format!("{other:?}"))
            );
            return 1;
        }
    };
    let reason = format!("assigned by {admin}");
    let closed = conns.get(&config.database, Use::Write).and_then(|conn| {
        store::close(
            conn,
            row.id,
            &Decision {
                state: State::Credited,
                reason: &reason,
                account: account.as_str(),
                prv_txn,
                admin,
            },
        )
        .map_err(|e| e.to_string())
    });
    match closed {
        Ok(_) => {
            println!(
                "row {} {} {} credited to {} (prv_txn {})",
                row.id,
                row.row_id,
                row.amount,
                account.as_str(),
                prv_txn.unwrap_or_default()
            );
            0
        }
        Err(e) => {
            eprintln!(
                "paysys statement: row {} credited (prv_txn {}), but not marked so: {e}",
                row.id,
                prv_txn.unwrap_or_default()
            );
            1
        }
    }
}

fn ignore(config: &Config, row_ref: &str, reason: &str, by_hand: bool, admin: &str) -> u8 {
    let mut conns = Connections::per_request();
    let conn = match conns.get(&config.database, Use::Write) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            return 1;
        }
    };
    let row = match store::find_by_ref(conn, row_ref) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("paysys statement: no row {row_ref} (see paysys statement list)");
            return 1;
        }
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            return 1;
        }
    };
    let state = if by_hand {
        State::ByHand
    } else {
        State::Ignored
    };
    let reason = format!("{reason} ({admin})");
    match store::close(
        conn,
        row.id,
        &Decision {
            state,
            reason: &reason,
            account: "",
            prv_txn: None,
            admin,
        },
    ) {
        Ok(true) => {
            println!(
                "row {} {} {}: {}",
                row.id,
                row.row_id,
                row.amount,
                state.name()
            );
            0
        }
        Ok(false) => {
            eprintln!(
                "paysys statement: row {} is {}, not waiting: nothing done",
                row.id,
                row.state.name()
            );
            1
        }
        Err(e) => {
            eprintln!("paysys statement: database: {e}");
            1
        }
    }
}
