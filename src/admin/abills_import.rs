//! `paysys import-abills`: ABillS's `paysys_connect` table as a `paysys.d/` overlay.
//!
//! ABillS keeps the payment systems an admin set up in its web interface in
//! `paysys_connect(id, paysys_id, name, module, status, paysys_ip, payment_method)`. Each
//! enabled row (`status = 1`) becomes a `[[system]]` carrying what ABillS did with it: the
//! protocol of its `module` (`Osmp.pm` → `osmp`), the addresses `paysys_ip` admitted (as
//! ABillS's `check_ip` reads them), `paysys_id` as `abills_id`, `payment_method` (0 means 2),
//! and the transaction prefix ABillS wrote in its rows (`substr(uc(name), 0, 3)`), so that
//! a payment it made before the switch is recognised when the terminal retries it.
//!
//! Whatever cannot be carried over is printed as a comment where the admin will see it: a
//! module paysys does not speak yet, `paysys_ip` entries ABillS never matched, two systems
//! sharing a prefix. Nothing is dropped silently, and what is printed loads as an overlay.
//!
//! Where paysys judges a payment that ABillS's script did not, the choice is written out
//! with what ABillS did: the sum limits (ABillS had none, so `max_sum = "none"`) and the
//! `txn_date` window (ABillS ignored `txn_date`; paysys keeps its window, said so). Limits
//! the admin set for the same system in another file are left to that file.

use std::fmt;
use std::path::{Path, PathBuf};

use mysql::prelude::Queryable;
use mysql::Conn;
use regex::Regex;

use crate::allow::AllowList;
use crate::config::{BillingKind, Config, Place, ProtocolKind, Signature, DEFAULT_WINDOW_HOURS};

/// MySQL's "Table doesn't exist".
const ER_NO_SUCH_TABLE: u16 = 1146;

/// The file the output is meant for, in the config's `paysys.d/`.
pub const OVERLAY_FILE: &str = "50-abills.toml";

/// One row of ABillS's `paysys_connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRow {
    pub id: u64,
    pub paysys_id: u64,
    pub name: String,
    pub module: String,
    pub status: u64,
    pub paysys_ip: String,
    pub payment_method: u64,
}

/// Why nothing could be printed. The text says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The database has no `paysys_connect`.
    NoTable {
        database: String,
    },
    Database(String),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::NoTable { database } => write!(
                f,
                "database {database} has no table paysys_connect: [database] url must name \
                 ABillS's database (…/abills) and ABillS's Paysys module must be installed there"
            ),
            ImportError::Database(e) => write!(
                f,
                "database: {e}; check [database] url (paysys check-db tests the connection)"
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// Where the rows came from and where the output goes, for the header.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `abills on 127.0.0.1:3306`: never the password.
    pub database: String,
    /// The main config file.
    pub config: PathBuf,
}

impl Origin {
    pub fn of(config: &Config, config_path: &Path) -> Origin {
        Origin {
            database: config
                .database
                .urls
                .iter()
                .map(|url| crate::db::describe_url(url))
                .collect::<Vec<_>>()
                .join(", "),
            config: config_path.to_path_buf(),
        }
    }

    fn overlay(&self) -> PathBuf {
        self.config.with_extension("d").join(OVERLAY_FILE)
    }
}

/// A system the config already has, as far as the overlay must know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub name: String,
    pub txn_prefix: String,
    /// Where a file other than the overlay itself sets the system's `min_sum`, `max_sum`,
    /// `txn_window_hours`: the admin's own limits, which the overlay must not override.
    pub min_sum: Option<Place>,
    pub max_sum: Option<Place>,
    pub txn_window_hours: Option<Place>,
}

impl Existing {
    /// `system` as the overlay at `overlay` sees it.
    pub fn of(system: &crate::config::System, overlay: &Path) -> Existing {
        // The overlay's own earlier output is what is being printed again, not the admin's.
        let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        let elsewhere = |places: &[Place]| {
            places
                .iter()
                .rev()
                .find(|p| !same(&p.path, overlay))
                .cloned()
        };
        Existing {
            name: system.name.clone(),
            txn_prefix: system.abills.txn_prefix.clone(),
            min_sum: elsewhere(&system.limits.min_sum),
            max_sum: elsewhere(&system.limits.max_sum),
            txn_window_hours: elsewhere(&system.limits.txn_window_hours),
        }
    }
}

/// Reads the config's database and renders the overlay: what `paysys import-abills` prints.
/// Also returns a one-line summary for the terminal.
pub fn import(config: &Config, config_path: &Path) -> Result<(String, String), ImportError> {
    let origin = Origin::of(config, config_path);
    let mut conn = crate::db::connect(&config.database, crate::db::Use::Read)
        .map_err(ImportError::Database)?;
    let rows = read(&mut conn, &origin.database)?;
    let overlay = origin.overlay();
    let others: Vec<Existing> = config
        .systems
        .iter()
        .map(|s| Existing::of(s, &overlay))
        .collect();
    let overlay = render(&rows, &origin, &others);
    Ok((overlay.text, overlay.summary))
}

/// All rows of `paysys_connect`, in ABillS's order (`paysys_id`).
pub fn read(conn: &mut Conn, database: &str) -> Result<Vec<ConnectRow>, ImportError> {
    let result = conn.query_iter(
        "SELECT id, paysys_id, name, module, status, paysys_ip, payment_method \
         FROM paysys_connect ORDER BY paysys_id, id",
    );
    let result = match result {
        Ok(r) => r,
        Err(e) if crate::db::server_code(&e) == Some(ER_NO_SUCH_TABLE) => {
            return Err(ImportError::NoTable {
                database: database.to_string(),
            })
        }
        Err(e) => return Err(ImportError::Database(e.to_string())),
    };
    let mut rows = Vec::new();
    for row in result {
        let mut row = row.map_err(|e| ImportError::Database(e.to_string()))?;
        let number = |row: &mut mysql::Row, i: usize, column: &str| match row
            .take_opt::<Option<u64>, usize>(i)
        {
            Some(Ok(n)) => Ok(n.unwrap_or(0)),
            _ => Err(ImportError::Database(format!(
                "paysys_connect.{column} is not a number"
            ))),
        };
        let text = |row: &mut mysql::Row, i: usize, column: &str| match row
            .take_opt::<Option<Vec<u8>>, usize>(i)
        {
            Some(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into()),
            _ => Err(ImportError::Database(format!(
                "paysys_connect.{column} is not text"
            ))),
        };
        rows.push(ConnectRow {
            id: number(&mut row, 0, "id")?,
            paysys_id: number(&mut row, 1, "paysys_id")?,
            name: text(&mut row, 2, "name")?,
            module: text(&mut row, 3, "module")?,
            status: number(&mut row, 4, "status")?,
            paysys_ip: text(&mut row, 5, "paysys_ip")?,
            payment_method: number(&mut row, 6, "payment_method")?,
        });
    }
    Ok(rows)
}

/// The printed overlay and a summary of it.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub text: String,
    pub summary: String,
}

/// Renders the rows as a `paysys.d/` overlay. `others`: the systems the config already has,
/// so that a prefix one of them uses is flagged and limits the admin set are kept.
pub fn render(rows: &[ConnectRow], origin: &Origin, others: &[Existing]) -> Overlay {
    let mut body = String::new();
    // (name, prefix, paysys_connect id) of the systems printed so far, active ones only.
    let mut active: Vec<(String, String, u64)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let (mut imported, mut commented, mut disabled) = (0, 0, 0);
    for row in rows {
        let title = format!(
            "ABillS paysys_connect id {}: {} ({}), paysys_id {}",
            row.id,
            comment_text(&row.name),
            comment_text(&row.module),
            row.paysys_id
        );
        if row.status != 1 {
            disabled += 1;
            body.push_str(&format!(
                "# {title}: disabled in ABillS (status {}), not imported\n\n",
                row.status
            ));
            continue;
        }
        let system = map_row(row, &names, others);
        names.push(system.name.clone());
        let mut notes = system.notes.clone();
        let mut blockers = system.blockers.clone();
        if let Some((name, _, id)) = active.iter().find(|(_, p, _)| *p == system.txn_prefix) {
            let why = format!(
                "system '{name}' (paysys_connect id {id}) has txn_prefix \"{}\" too: ABillS \
                 wrote \"{}:<txn_id>\" for both, but paysys tells systems apart by the prefix \
                 and refuses two with one prefix. Give this one another txn_prefix (1-3 letters \
                 or digits) and uncomment it; a payment ABillS made for it before the switch \
                 is then not recognised when retried",
                system.txn_prefix, system.txn_prefix
            );
            blockers.push(why);
        } else if let Some(other) = others.iter().find(|o| {
            o.txn_prefix == system.txn_prefix && !o.name.eq_ignore_ascii_case(&system.name)
        }) {
            blockers.push(format!(
                "system '{}' of the config has txn_prefix \"{}\" too: paysys refuses two \
                 systems with one prefix. Change one of them and uncomment this one",
                other.name, system.txn_prefix
            ));
        }
        if blockers.is_empty() {
            imported += 1;
            active.push((system.name.clone(), system.txn_prefix.clone(), row.id));
        } else {
            commented += 1;
            notes.extend(blockers.iter().map(|b| format!("NOT IMPORTED: {b}.")));
        }
        body.push_str(&format!("# {title}\n"));
        for note in &notes {
            for line in wrap(note, 88) {
                body.push_str(&format!("# {line}\n"));
            }
        }
        let off = if blockers.is_empty() { "" } else { "# " };
        for line in &system.lines {
            match line {
                Line::Key(text) => body.push_str(&format!("{off}{text}\n")),
                Line::Comment(text) => body.push_str(&format!("# {text}\n")),
                Line::Note(text) => {
                    for line in wrap(text, 88) {
                        body.push_str(&format!("# {line}\n"));
                    }
                }
            }
        }
        body.push('\n');
    }
    let overlay = origin.overlay();
    let config = origin.config.display();
    let mut text = String::new();
    let paragraph = |text: &mut String, words: &str| {
        for line in wrap(words, 88) {
            text.push_str(&format!("# {line}\n"));
        }
    };
    paragraph(
        &mut text,
        &format!(
            "The payment systems set up in ABillS (table paysys_connect, database {}), \
             printed by `paysys import-abills` for paysys_check.cgi. To use it:",
            comment_text(&origin.database)
        ),
    );
    text.push_str(&format!(
        "#   paysys import-abills {config} > {}\n#   paysys check-config {config}\n",
        overlay.display()
    ));
    paragraph(
        &mut text,
        &format!(
            "Files in {}/ are read after the main config, in name order. A [[system]] here \
             with the name of one there changes only the keys set here (add reset = true to \
             it to take that system from this file alone). abills_id .. txn_prefix take \
             effect with database.billing = \"abills\". Read the comments: what paysys cannot \
             take over is shown there, not left out silently.",
            overlay.parent().unwrap_or(Path::new(".")).display()
        ),
    );
    text.push_str(&format!(
        "# Enabled in ABillS: {imported} imported, {commented} left commented out; \
         disabled: {disabled}.\n\n"
    ));
    if rows.is_empty() {
        text.push_str("# paysys_connect has no rows: no system is set up in ABillS.\n");
    }
    text.push_str(&body);
    while text.ends_with("\n\n") {
        text.pop();
    }
    let summary = format!(
        "{imported} system(s) imported from paysys_connect, {commented} left commented out, \
         {disabled} disabled row(s) shown as comments"
    );
    Overlay { text, summary }
}

// ----- one row ------------------------------------------------------------------------------

/// A line of a `[[system]]` block: keys are commented out with the block, comments stay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Key(String),
    /// Printed as it is: a key to uncomment.
    Comment(String),
    /// Wrapped.
    Note(String),
}

/// An enabled row, mapped.
#[derive(Debug, Clone)]
struct Mapped {
    name: String,
    txn_prefix: String,
    /// Comment lines above the block.
    notes: Vec<String>,
    /// Reasons the block is printed commented out.
    blockers: Vec<String>,
    lines: Vec<Line>,
}

fn map_row(row: &ConnectRow, taken: &[String], others: &[Existing]) -> Mapped {
    let mut notes = Vec::new();
    let mut blockers = Vec::new();
    let name = system_name(row, taken);
    let upper = row.name.to_uppercase();
    let mut lines = vec![
        Line::Key("[[system]]".into()),
        Line::Key(format!("name = {}", quoted(&name))),
    ];

    let module = row.module.trim();
    let stem = module.strip_suffix(".pm").unwrap_or(module).to_lowercase();
    match ProtocolKind::ALL.iter().find(|p| p.abills_module() == stem) {
        Some(p) => {
            lines.push(Line::Key(format!("protocol = {}", quoted(p.name()))));
            // ABillS keeps the keys in config.pl and files, not in paysys_connect: the admin
            // copies them, or the system would load without one (which the config refuses).
            match p.signature() {
                Signature::Shared if *p == ProtocolKind::Click => {
                    blockers.push(format!(
                        "protocol click signs its requests: copy the service id and the secret \
                         key of Click's merchant cabinet ($conf{{PAYSYS_{}_…}} in ABillS's \
                         config.pl) into service_id and secret_key below, then take the system in",
                        comment_text(&upper)
                    ));
                    lines.push(Line::Key("service_id = \"\"".into()));
                    lines.push(Line::Key("secret_key = \"\"".into()));
                }
                Signature::Shared if *p == ProtocolKind::Payme => {
                    blockers.push(format!(
                        "protocol payme authenticates each request with the merchant key: copy \
                         $conf{{PAYSYS_{}_PASSWD}} from ABillS's config.pl (the key of Payme's \
                         cabinet) into key = \"…\" below, then take the system in",
                        comment_text(&upper)
                    ));
                    lines.push(Line::Key("key = \"\"".into()));
                }
                Signature::Shared => {
                    blockers.push(format!(
                        "protocol {} signs its requests: copy $conf{{PAYSYS_{}_SECRET}} from \
                         ABillS's config.pl into secret = \"…\" below, then take the system in",
                        p.name(),
                        comment_text(&upper)
                    ));
                    lines.push(Line::Key("secret = \"\"".into()));
                    if *p == ProtocolKind::Nonstop24 {
                        // ABillS keeps no service id in paysys_connect; its module signs the
                        // SERVICE_ID each request sends, which is paysys's default too.
                        lines.push(Line::Note(format!(
                            "ABillS signs the SERVICE_ID each request sends, as paysys does \
                             without service_id; set service_id to the one SERVICE_ID the \
                             operator gave you ($conf{{PAYSYS_{}_SERVICE_ID}} in config.pl) to \
                             sign that one always, or sign_service_id = false for 2.10 \
                             terminals, which send none",
                            comment_text(&upper)
                        )));
                        lines.push(Line::Comment("service_id = \"\"".into()));
                    }
                }
                Signature::Rsa => {
                    blockers.push(format!(
                        "protocol {} verifies requests with the certificate EasySoft issued: \
                         set certificate = \"…\" below (and private_key to sign answers), then \
                         take the system in",
                        p.name()
                    ));
                    lines.push(Line::Key("certificate = \"\"".into()));
                }
                Signature::Provider => {
                    blockers.push(format!(
                        "protocol {} is a card provider's: copy the keys of its merchant \
                         cabinet (ABillS keeps them in config.pl as $conf{{PAYSYS_{}_…}}) into \
                         the keys below, then take the system in",
                        p.name(),
                        comment_text(&upper)
                    ));
                }
                Signature::None => {}
            }
        }
        None => {
            let spoken: Vec<&str> = ProtocolKind::ALL.iter().map(|p| p.name()).collect();
            blockers.push(format!(
                "module {} is a protocol paysys does not speak yet (it speaks {}); until it \
                 does, paysys_check.cgi refuses this system's callers as unknown",
                comment_text(module),
                spoken.join(", ")
            ));
            lines.push(Line::Key(format!("protocol = {}", quoted(&stem))));
        }
    }

    let allow = read_paysys_ip(&row.paysys_ip);
    for note in &allow.notes {
        lines.push(Line::Note(note.clone()));
    }
    let entries: Vec<String> = allow.entries.iter().map(|e| quoted(e)).collect();
    lines.push(Line::Key(format!("allow = [{}]", entries.join(", "))));
    let needs_allow = ProtocolKind::ALL
        .iter()
        .any(|p| p.abills_module() == stem && p.needs_allow());
    if allow.entries.is_empty() && needs_allow {
        blockers.push(format!(
            "protocol {stem} has no signature: its callers' addresses are the only \
             credential, and paysys_ip lists none; set allow below to the addresses the \
             payment system gave you, then take the system in"
        ));
    } else if allow.entries.is_empty() {
        lines.push(Line::Note(
            "allow is empty: nobody may call as this system (ABillS's paysys_ip admitted \
             nobody either)"
                .into(),
        ));
    }

    lines.push(Line::Comment(format!(
        "account = [\"uid\"]  # ABillS's PAYSYS_{}_ACCOUNT_KEY: uid (default), login, contract_id",
        comment_text(&upper)
    )));

    match u8::try_from(row.paysys_id) {
        Ok(id) => lines.push(Line::Key(format!("abills_id = {id}"))),
        Err(_) => {
            blockers.push(format!(
                "paysys_id {} does not fit paysys_log.system_id (0-255)",
                row.paysys_id
            ));
            lines.push(Line::Key(format!("abills_id = {}", row.paysys_id)));
        }
    }
    match row.payment_method {
        0 => lines.push(Line::Key(
            "payment_method = 2  # paysys_connect says 0: ABillS then files payments as 2, \
             External payments"
                .into(),
        )),
        m if m <= 255 => lines.push(Line::Key(format!("payment_method = {m}"))),
        m => {
            blockers.push(format!(
                "payment_method {m} does not fit payments.method (0-255)"
            ));
            lines.push(Line::Key(format!("payment_method = {m}")));
        }
    }
    lines.push(Line::Key(format!(
        "description = {}",
        quoted(&description(&upper))
    )));

    let abills_prefix: String = upper.chars().take(3).collect();
    let txn_prefix = if valid_prefix(&abills_prefix) {
        abills_prefix
    } else {
        let fallback = fallback_prefix(&upper, row.paysys_id);
        notes.push(format!(
            "ABillS wrote \"{}:<txn_id>\" (the first three characters of the name in \
             capitals), which paysys cannot write (1-3 letters or digits): \"{fallback}\" \
             instead. A payment ABillS made before the switch is not recognised when retried",
            comment_text(&abills_prefix)
        ));
        fallback
    };
    lines.push(Line::Key(format!("txn_prefix = {}", quoted(&txn_prefix))));
    // The overlay changes the config's system of this name, if it has one.
    let existing = others.iter().find(|o| o.name == name);
    limits(&mut lines, existing);

    Mapped {
        name,
        txn_prefix,
        notes,
        blockers,
        lines,
    }
}

/// The sum limits and the `txn_date` window, written out with what ABillS did, so that
/// nothing paysys refuses where ABillS's script paid comes from a default nobody saw. A key
/// another file sets for this system is printed commented out: the admin's limit stands.
fn limits(lines: &mut Vec<Line>, existing: Option<&Existing>) {
    let (largest, column) = BillingKind::Abills.largest_payment();
    lines.push(Line::Note(format!(
        "Sums: ABillS's script credited any sum above 0 that a payment system sent. Its config \
         has no minimum or maximum per payment system ($conf{{PAYSYS_MIN_SUM}} and \
         $conf{{PAYSYS_MAX_SUM}} bound only what a subscriber enters on the user portal, not \
         the systems' requests), so nothing here is read from config.pl. min_sum \"0.01\" \
         and max_sum \"none\" accept what ABillS accepted: any sum up to {largest}, the most \
         its {column} holds. Set a sum instead of \"none\" to refuse larger payments (242, \
         nod9)."
    )));
    let key = |lines: &mut Vec<Line>, text: String, set: Option<&Place>| match set {
        None => lines.push(Line::Key(text)),
        Some(place) => lines.push(Line::Comment(format!(
            "{text}  # {place} sets it for this system: that stays"
        ))),
    };
    key(
        lines,
        "min_sum = \"0.01\"".into(),
        existing.and_then(|e| e.min_sum.as_ref()),
    );
    key(
        lines,
        "max_sum = \"none\"".into(),
        existing.and_then(|e| e.max_sum.as_ref()),
    );
    lines.push(Line::Note(format!(
        "txn_date: ABillS's script did not look at it and credited a payment however late a \
         terminal delivered it. paysys refuses a pay whose txn_date is more than \
         txn_window_hours from the server's clock (300, nod12, final), so that a terminal \
         with a wrong clock cannot pay into the past or the future; such refusals are logged \
         and counted by paysys report. {DEFAULT_WINDOW_HOURS} is NoDeny's day; raise it (up \
         to 8784) if this system's terminals deliver payments later."
    )));
    key(
        lines,
        format!("txn_window_hours = {DEFAULT_WINDOW_HOURS}"),
        existing.and_then(|e| e.txn_window_hours.as_ref()),
    );
}

/// A valid, unused system name for the row: its ABillS name in lower case, letters, digits,
/// `_` and `-` (anything else becomes `_`, other scripts are left out), at most 32; else
/// its module's name; else `abills<paysys_id>`. A name already taken gets `-<paysys_id>`.
fn system_name(row: &ConnectRow, taken: &[String]) -> String {
    let module = row.module.trim();
    let module = module.strip_suffix(".pm").unwrap_or(module);
    let base = [sanitize(&row.name), sanitize(module)]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| format!("abills{}", row.paysys_id));
    let free = |n: &str| !taken.iter().any(|t| t.eq_ignore_ascii_case(n));
    if free(&base) {
        return base;
    }
    for suffix in [format!("-{}", row.paysys_id), format!("-{}", row.id)] {
        let mut stem = base.clone();
        stem.truncate(32 - suffix.len());
        let candidate = format!("{stem}{suffix}");
        if free(&candidate) {
            return candidate;
        }
    }
    (2..)
        .map(|n| format!("abills{}-{n}", row.id))
        .find(|c| free(c))
        .unwrap_or_default()
}

fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            c if c.is_ascii() => '_',
            _ => continue,
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_matches(['_', '-']).to_string();
    out.truncate(32);
    out.trim_end_matches(['_', '-']).to_string()
}

/// `"<NAME> Payments"`, as ABillS writes into `payments.dsc` (VARCHAR(80): longer was cut).
fn description(upper: &str) -> String {
    format!("{upper} Payments")
        .chars()
        .filter(|c| !c.is_control() && (*c as u32) <= 0xFFFF)
        .take(80)
        .collect()
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn fallback_prefix(upper: &str, paysys_id: u64) -> String {
    let letters: String = upper
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect();
    if letters.is_empty() {
        format!("{:03}", paysys_id % 1000)
    } else {
        letters
    }
}

// ----- paysys_ip ----------------------------------------------------------------------------

/// `paysys_ip` as ABillS's `check_ip` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadIps {
    entries: Vec<String>,
    notes: Vec<String>,
}

/// ABillS splits `paysys_ip` on `/,\s?/` and takes from each entry what
/// `^(!?)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\/?(\d{0,2})` matches, ignoring the rest;
/// an entry it does not match is never admitted. The first entry matching the caller decides.
fn read_paysys_ip(paysys_ip: &str) -> ReadIps {
    let split = Regex::new(r",\s?").expect("regex");
    let entry_re =
        Regex::new(r"^(!?)([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})/?([0-9]{0,2})")
            .expect("regex");
    let mut entries: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut unmatched = Vec::new();
    for raw in split.split(paysys_ip).filter(|e| !e.is_empty()) {
        let Some(m) = entry_re.captures(raw) else {
            unmatched.push(quoted(raw));
            continue;
        };
        let mut entry = format!("{}{}", &m[1], &m[2]);
        if !m[3].is_empty() {
            entry.push('/');
            entry.push_str(&m[3]);
        }
        if let Err(e) = AllowList::parse(std::slice::from_ref(&entry)) {
            notes.push(format!(
                "paysys_ip entry {}: {e}; left out, fix it and add it to allow.",
                quoted(raw)
            ));
            continue;
        }
        let matched = m.get(0).map_or(0, |m| m.end());
        if matched < raw.len() {
            notes.push(format!(
                "paysys_ip entry {}: ABillS read it as {} and ignored the rest.",
                quoted(raw),
                quoted(&entry)
            ));
        }
        entries.push(entry);
    }
    if !unmatched.is_empty() {
        notes.push(format!(
            "paysys_ip entries that are not IPs or networks as ABillS reads them (a.b.c.d or \
             a.b.c.d/nn, after a comma and at most one space), so it never admitted them; \
             left out: {}.",
            unmatched.join(", ")
        ));
    }
    // ABillS: the first matching entry decides, so "!x" after an entry that admits x does
    // nothing. paysys excludes "!" entries wherever they stand.
    for (j, deny) in entries.iter().enumerate() {
        let Some(excluded) = deny.strip_prefix('!') else {
            continue;
        };
        let earlier = entries[..j]
            .iter()
            .find(|plain| !plain.starts_with('!') && overlaps(plain, excluded));
        if let Some(plain) = earlier {
            notes.push(format!(
                "ABillS let the first matching entry decide, so it admitted {excluded} through \
                 the earlier \"{plain}\"; paysys applies \"!{excluded}\" wherever it stands and \
                 refuses it. Drop \"!{excluded}\" to keep admitting it."
            ));
        }
    }
    ReadIps { entries, notes }
}

fn overlaps(a: &str, b: &str) -> bool {
    match (
        AllowList::parse(&[a.to_string()]),
        AllowList::parse(&[b.to_string()]),
    ) {
        (Ok(a), Ok(b)) => a.overlaps(&b),
        _ => false,
    }
}

// ----- text ---------------------------------------------------------------------------------

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a comment: control characters (a newline would end the comment) escaped.
fn comment_text(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Splits a note into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        id: u64,
        paysys_id: u64,
        name: &str,
        module: &str,
        ips: &str,
        method: u64,
    ) -> ConnectRow {
        ConnectRow {
            id,
            paysys_id,
            name: name.into(),
            module: module.into(),
            status: 1,
            paysys_ip: ips.into(),
            payment_method: method,
        }
    }

    fn origin() -> Origin {
        Origin {
            database: "abills on 127.0.0.1:3306".into(),
            config: PathBuf::from("/usr/abills/etc/paysys.toml"),
        }
    }

    const MAIN: &str =
        "[database]\nurl = \"mysql://paysys:x@127.0.0.1/abills\"\nbilling = \"abills\"\n";

    /// The overlay loads next to a main config with billing = "abills".
    fn load(overlay: &str) -> Config {
        Config::from_sources(
            PathBuf::from("/usr/abills"),
            &[
                (PathBuf::from("/usr/abills/etc/paysys.toml"), MAIN.into()),
                (
                    PathBuf::from("/usr/abills/etc/paysys.d/50-abills.toml"),
                    overlay.into(),
                ),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n{overlay}"))
    }

    fn render_rows(rows: &[ConnectRow]) -> String {
        render(rows, &origin(), &[]).text
    }

    /// What every imported system says about its limits, when no other file sets them.
    const LIMITS: &str = "\
# Sums: ABillS's script credited any sum above 0 that a payment system sent. Its config
# has no minimum or maximum per payment system ($conf{PAYSYS_MIN_SUM} and
# $conf{PAYSYS_MAX_SUM} bound only what a subscriber enters on the user portal, not the
# systems' requests), so nothing here is read from config.pl. min_sum \"0.01\" and max_sum
# \"none\" accept what ABillS accepted: any sum up to 99999999.99, the most its payments.sum
# holds. Set a sum instead of \"none\" to refuse larger payments (242, nod9).
min_sum = \"0.01\"
max_sum = \"none\"
# txn_date: ABillS's script did not look at it and credited a payment however late a
# terminal delivered it. paysys refuses a pay whose txn_date is more than txn_window_hours
# from the server's clock (300, nod12, final), so that a terminal with a wrong clock
# cannot pay into the past or the future; such refusals are logged and counted by paysys
# report. 24 is NoDeny's day; raise it (up to 8784) if this system's terminals deliver
# payments later.
txn_window_hours = 24
";

    #[test]
    fn the_fixture_rows() {
        let mut easypay = row(2, 62, "Easypay", "Easypay.pm", "203.0.113.5", 0);
        easypay.status = 0;
        let rows = [
            row(1, 44, "Osmp", "Osmp.pm", "192.0.2.10, 192.0.2.11", 10),
            easypay,
        ];
        let text = render_rows(&rows);
        let expected_system = "\
# ABillS paysys_connect id 1: Osmp (Osmp.pm), paysys_id 44
[[system]]
name = \"osmp\"
protocol = \"osmp\"
allow = [\"192.0.2.10\", \"192.0.2.11\"]
# account = [\"uid\"]  # ABillS's PAYSYS_OSMP_ACCOUNT_KEY: uid (default), login, contract_id
abills_id = 44
payment_method = 10
description = \"OSMP Payments\"
txn_prefix = \"OSM\"
{LIMITS}
# ABillS paysys_connect id 2: Easypay (Easypay.pm), paysys_id 62: disabled in ABillS (status 0), not imported
";
        let expected_system = expected_system.replace("{LIMITS}", LIMITS);
        assert!(text.ends_with(&expected_system), "{text}");
        assert!(
            text.contains(
                "#   paysys import-abills /usr/abills/etc/paysys.toml > \
                 /usr/abills/etc/paysys.d/50-abills.toml\n#   paysys check-config"
            ),
            "{text}"
        );
        assert!(text.contains("1 imported, 0 left commented out; disabled: 1"));
        let c = load(&text);
        assert_eq!(c.systems.len(), 1);
        let s = &c.systems[0];
        assert_eq!(s.name, "osmp");
        assert_eq!(s.protocol, ProtocolKind::Osmp);
        assert!(s.allow.allows("192.0.2.11".parse().unwrap()));
        assert!(!s.allow.allows("192.0.2.12".parse().unwrap()));
        assert_eq!(
            (s.abills.id, s.abills.payment_method, s.abills.admin_id),
            (44, 10, 2)
        );
        assert_eq!(s.abills.description, "OSMP Payments");
        assert_eq!(s.abills.txn_prefix, "OSM");
        // What ABillS accepted: any sum above 0, up to what payments.sum holds; the window
        // is paysys's own, written out.
        assert_eq!(
            (
                s.min_sum,
                s.max_sum,
                s.limits.max_sum_none,
                s.txn_window_hours
            ),
            (
                crate::domain::Amount::from_kopecks(1),
                crate::domain::Amount::from_kopecks(9_999_999_999),
                true,
                24
            )
        );
    }

    #[test]
    fn limits_another_file_sets_are_left_to_it() {
        let rows = [row(1, 44, "Osmp", "Osmp.pm", "192.0.2.10", 0)];
        let main = |line| Place {
            path: PathBuf::from("/usr/abills/etc/paysys.toml"),
            line,
        };
        let others = [Existing {
            name: "osmp".into(),
            txn_prefix: "OSM".into(),
            max_sum: Some(main(12)),
            txn_window_hours: Some(main(13)),
            ..Existing::default()
        }];
        let text = render(&rows, &origin(), &others).text;
        assert!(text.contains("\nmin_sum = \"0.01\"\n"), "{text}");
        assert!(
            text.contains(
                "\n# max_sum = \"none\"  # /usr/abills/etc/paysys.toml line 12 sets it for \
                 this system: that stays\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\n# txn_window_hours = 24  # /usr/abills/etc/paysys.toml line 13 sets it for \
                 this system: that stays\n"
            ),
            "{text}"
        );
        // Another system's limits are not this one's.
        let others = [Existing {
            name: "qiwi".into(),
            txn_prefix: "QIW".into(),
            max_sum: Some(main(12)),
            ..Existing::default()
        }];
        let text = render(&rows, &origin(), &others).text;
        assert!(text.contains("\nmax_sum = \"none\"\n"), "{text}");
        // A system printed commented out has its limits commented out with it.
        let blocked = [row(1, 57, "Easypay", "Easypay.pm", "203.0.113.5", 0)];
        let text = render_rows(&blocked);
        assert!(text.contains("\n# max_sum = \"none\"\n"), "{text}");
    }

    #[test]
    fn names_become_valid_and_unique() {
        let long = "A".repeat(40);
        let table: &[(&str, &str, &str)] = &[
            ("Osmp", "Osmp.pm", "osmp"),
            ("QIWI Terminals", "Osmp.pm", "qiwi_terminals"),
            ("  pay..box!! ", "Osmp.pm", "pay_box"),
            ("osmp-2", "Osmp.pm", "osmp-2"),
            ("Приват", "Osmp.pm", "osmp"),
            ("Приват", "Privat_terminal.pm", "privat_terminal"),
            ("Приват", ".pm", "abills7"),
            (&long, "Osmp.pm", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ];
        for (name, module, want) in table {
            let r = row(1, 7, name, module, "", 0);
            assert_eq!(system_name(&r, &[]), *want, "{name}");
        }
        let r = row(3, 45, "OSMP", "Osmp.pm", "", 0);
        assert_eq!(system_name(&r, &["osmp".into()]), "osmp-45");
        assert_eq!(
            system_name(&r, &["osmp".into(), "osmp-45".into()]),
            "osmp-3"
        );
        let r = row(3, 45, &long, "Osmp.pm", "", 0);
        let n = system_name(&r, &[sanitize(&long)]);
        assert_eq!((n.len(), n.ends_with("-45")), (32, true), "{n}");
    }

    #[test]
    fn paysys_ip_is_read_as_abills_reads_it() {
        // (paysys_ip, allow entries, a note must contain)
        let table: &[(&str, &[&str], Option<&str>)] = &[
            (
                "192.0.2.10, 192.0.2.11",
                &["192.0.2.10", "192.0.2.11"],
                None,
            ),
            ("192.0.2.10,192.0.2.11", &["192.0.2.10", "192.0.2.11"], None),
            ("!10.0.0.13,10.0.0.0/8", &["!10.0.0.13", "10.0.0.0/8"], None),
            (
                "10.0.0.0/8,!10.0.0.13",
                &["10.0.0.0/8", "!10.0.0.13"],
                Some("it admitted 10.0.0.13 through the earlier \"10.0.0.0/8\""),
            ),
            (
                "192.0.2.10,  192.0.2.11",
                &["192.0.2.10"],
                Some("left out: \" 192.0.2.11\""),
            ),
            (
                "192.0.2.10\n192.0.2.11",
                &["192.0.2.10"],
                Some("\"192.0.2.10\\n192.0.2.11\": ABillS read it as \"192.0.2.10\""),
            ),
            (
                "192.0.2.10; 192.0.2.11",
                &["192.0.2.10"],
                Some("ignored the rest"),
            ),
            (
                "terminal.example.com, 192.0.2.1",
                &["192.0.2.1"],
                Some("left out: \"terminal.example.com\""),
            ),
            ("2001:db8::1", &[], Some("left out: \"2001:db8::1\"")),
            (
                "10.0.0.300, 192.0.2.1/33",
                &[],
                Some("entry \"10.0.0.300\": '10.0.0.300' is not an IP"),
            ),
            ("192.0.2.0/24,", &["192.0.2.0/24"], None),
            ("", &[], None),
        ];
        for (ips, want, note) in table {
            let read = read_paysys_ip(ips);
            assert_eq!(read.entries, *want, "{ips:?}");
            match note {
                Some(n) => assert!(
                    read.notes.iter().any(|x| x.contains(n)),
                    "{ips:?}: {read:?}"
                ),
                None => assert!(read.notes.is_empty(), "{ips:?}: {read:?}"),
            }
            // Every form prints as an overlay that loads.
            let text = render_rows(&[row(1, 44, "Osmp", "Osmp.pm", ips, 0)]);
            let c = load(&text);
            assert_eq!(c.systems.len(), 1, "{text}");
            assert_eq!(
                c.systems[0].allow.is_empty(),
                !want.iter().any(|e| !e.starts_with('!'))
            );
        }
        let garbage = render_rows(&[row(1, 44, "Osmp", "Osmp.pm", "10.0.0.300, 192.0.2.1/33", 0)]);
        assert!(garbage.contains("\"192.0.2.1/33\""), "{garbage}");
        assert!(
            garbage.contains("allow = []\n# allow is empty: nobody"),
            "{garbage}"
        );
    }

    #[test]
    fn payment_method_zero_is_two() {
        for (method, want) in [(0, 2), (10, 10), (2, 2), (255, 255)] {
            let text = render_rows(&[row(1, 44, "Osmp", "Osmp.pm", "192.0.2.1", method)]);
            assert_eq!(load(&text).systems[0].abills.payment_method, want, "{text}");
        }
        let text = render_rows(&[row(1, 44, "Osmp", "Osmp.pm", "192.0.2.1", 0)]);
        assert!(
            text.contains("payment_method = 2  # paysys_connect says 0"),
            "{text}"
        );
    }

    #[test]
    fn signed_modules_wait_for_their_keys() {
        let rows = [
            row(1, 57, "Easypay", "Easypay.pm", "203.0.113.5", 0),
            row(2, 52, "24_non_stop", "24_non_stop.pm", "203.0.113.6", 0),
        ];
        let text = render_rows(&rows);
        let flat = text.replace("\n# ", " ");
        assert!(
            flat.contains("verifies requests with the certificate EasySoft issued"),
            "{text}"
        );
        assert!(text.contains("# protocol = \"easypay\"\n"), "{text}");
        assert!(text.contains("# certificate = \"\"\n"), "{text}");
        assert!(flat.contains("$conf{PAYSYS_24_NON_STOP_SECRET}"), "{text}");
        assert!(text.contains("\n# service_id = \"\"\n"), "{text}");
        assert!(
            flat.contains("$conf{PAYSYS_24_NON_STOP_SERVICE_ID}"),
            "{text}"
        );
        assert!(text.contains("# protocol = \"24nonstop\"\n"), "{text}");
        assert!(load(&text).systems.is_empty(), "{text}");
    }

    #[test]
    fn kaspi_is_imported_with_its_paysys_connect_id() {
        let rows = [row(1, 130, "Kaspi", "Kaspi.pm", "192.0.2.30", 0)];
        let text = render_rows(&rows);
        assert!(text.contains("protocol = \"kaspi\"\n"), "{text}");
        let c = load(&text);
        let s = c.system("kaspi").expect("imported");
        assert_eq!(s.protocol, ProtocolKind::Kaspi);
        assert_eq!((s.abills.id, s.abills.txn_prefix.as_str()), (130, "KAS"));
        assert!(s.allow.allows("192.0.2.30".parse().unwrap()));
    }

    #[test]
    fn portmone_is_imported_only_with_its_addresses() {
        let rows = [
            row(1, 62, "Portmone", "Portmone.pm", "203.0.113.5", 0),
            row(2, 63, "Portmone2", "Portmone.pm", "", 0),
        ];
        let text = render_rows(&rows);
        let c = load(&text);
        let s = c.system("portmone").expect("imported");
        assert_eq!((s.protocol, s.abills.id), (ProtocolKind::Portmone, 62));
        assert!(
            text.replace("\n# ", " ")
                .contains("protocol portmone has no signature"),
            "{text}"
        );
        assert!(c.system("portmone2").is_none(), "{text}");
    }

    #[test]
    fn click_waits_for_its_keys_and_then_loads() {
        let text = render_rows(&[row(1, 120, "Click", "Click.pm", "203.0.113.7", 0)]);
        let flat = text.replace("\n# ", " ");
        assert!(flat.contains("protocol click signs its requests"), "{text}");
        assert!(flat.contains("$conf{PAYSYS_CLICK_…}"), "{text}");
        assert!(text.contains("# protocol = \"click\"\n"), "{text}");
        assert!(
            text.contains("# service_id = \"\"\n# secret_key = \"\"\n"),
            "{text}"
        );
        assert!(load(&text).systems.is_empty(), "{text}");
        // The admin fills in the keys and takes the block in: it loads, with ABillS's id.
        let taken: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(k)
                    if k == "[[system]]"
                        || k.split_once(" = ").is_some_and(|(key, _)| {
                            !key.is_empty()
                                && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        }) =>
                {
                    k.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("service_id = \"\"", "service_id = \"17449\"")
            .replace("secret_key = \"\"", "secret_key = \"k\"");
        let c = load(&taken);
        let click = c.system("click").unwrap_or_else(|| panic!("{taken}"));
        assert_eq!(click.abills.id, 120);
        assert!(click.sign().is_some());
    }

    #[test]
    fn payme_waits_for_its_key() {
        let text = render_rows(&[row(1, 121, "Payme", "Payme.pm", "203.0.113.8", 0)]);
        let flat = text.replace("\n# ", " ");
        assert!(flat.contains("$conf{PAYSYS_PAYME_PASSWD}"), "{text}");
        assert!(text.contains("# protocol = \"payme\"\n"), "{text}");
        assert!(text.contains("# key = \"\"\n"), "{text}");
        assert!(load(&text).systems.is_empty(), "{text}");
    }

    #[test]
    fn modules_paysys_does_not_speak_are_shown_commented_out() {
        let rows = [
            row(1, 44, "Osmp", "Osmp.pm", "192.0.2.10", 0),
            row(2, 62, "Fondy", "Fondy.pm", "203.0.113.5", 0),
            row(3, 80, "Terminal", " OSMP.pm ", "198.51.100.1", 0),
        ];
        let text = render_rows(&rows);
        assert!(
            text.replace("\n# ", " ")
                .contains("NOT IMPORTED: module Fondy.pm is a protocol paysys does not speak yet"),
            "{text}"
        );
        assert!(text.contains("# [[system]]\n# name = \"fondy\"\n# protocol = \"fondy\"\n# allow = [\"203.0.113.5\"]\n"), "{text}");
        assert!(text.contains("2 imported, 1 left commented out"), "{text}");
        let c = load(&text);
        let names: Vec<&str> = c.systems.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["osmp", "terminal"]);
        assert_eq!(c.system("terminal").unwrap().abills.txn_prefix, "TER");
        assert_eq!(
            c.system("terminal").unwrap().abills.description,
            "TERMINAL Payments"
        );
    }

    #[test]
    fn colliding_prefixes_are_flagged_and_the_overlay_still_loads() {
        let rows = [
            row(1, 44, "Osmp", "Osmp.pm", "192.0.2.10", 0),
            row(2, 45, "OSMP2", "Osmp.pm", "192.0.2.20", 0),
        ];
        let text = render_rows(&rows);
        assert!(
            text.contains(
                "# NOT IMPORTED: system 'osmp' (paysys_connect id 1) has txn_prefix \"OSM\" too"
            ),
            "{text}"
        );
        assert!(text.contains("# [[system]]\n# name = \"osmp2\""), "{text}");
        assert_eq!(load(&text).systems.len(), 1);

        // A prefix a system of the main config has.
        let others = [Existing {
            name: "terminal".into(),
            txn_prefix: "OSM".into(),
            ..Existing::default()
        }];
        let text = render(&rows[..1], &origin(), &others).text;
        assert!(
            text.contains("system 'terminal' of the config has txn_prefix"),
            "{text}"
        );
        // The same system in the main config is the one this overlay changes.
        let others = [Existing {
            name: "osmp".into(),
            txn_prefix: "OSM".into(),
            ..Existing::default()
        }];
        let text = render(&rows[..1], &origin(), &others).text;
        assert!(!text.contains("NOT IMPORTED"), "{text}");
    }

    #[test]
    fn prefixes_and_descriptions_follow_abills() {
        // (name, txn_prefix, description)
        let table: &[(&str, &str, &str)] = &[
            ("Osmp", "OSM", "OSMP Payments"),
            ("Qw", "QW", "QW Payments"),
            ("24nonstop", "24N", "24NONSTOP Payments"),
            ("Q-Pay", "QPA", "Q-PAY Payments"),
            ("Приват", "007", "ПРИВАТ Payments"),
            ("a\"b\\c", "ABC", "A\"B\\C Payments"),
        ];
        for (name, prefix, desc) in table {
            let text = render_rows(&[row(1, 7, name, "Osmp.pm", "192.0.2.1", 0)]);
            let c = load(&text);
            let s = &c.systems[0].abills;
            assert_eq!(
                (s.txn_prefix.as_str(), s.description.as_str()),
                (*prefix, *desc),
                "{text}"
            );
            assert_eq!(
                text.contains("# ABillS wrote \""),
                ["Q-Pay", "Приват", "a\"b\\c"].contains(name),
                "{text}"
            );
        }
        let long = "x".repeat(80);
        assert_eq!(description(&long.to_uppercase()).chars().count(), 80);
    }

    #[test]
    fn hostile_names_stay_in_their_comments() {
        let rows = [row(
            1,
            44,
            "Osmp\n[[system]]\nname = \"evil\"",
            "Osmp.pm",
            "192.0.2.1",
            0,
        )];
        let text = render_rows(&rows);
        let c = load(&text);
        assert_eq!(c.systems.len(), 1, "{text}");
        assert!(!text.contains("\nname = \"evil\""), "{text}");
    }

    #[test]
    fn no_rows_no_systems() {
        let text = render_rows(&[]);
        assert!(text.contains("paysys_connect has no rows"), "{text}");
        assert!(load(&text).systems.is_empty());
    }

    #[test]
    fn urls_are_described_without_passwords() {
        assert_eq!(
            crate::db::describe_url("mysql://paysys:secret@127.0.0.1:3306/abills"),
            "abills on 127.0.0.1:3306"
        );
        assert_eq!(
            crate::db::describe_url(
                "mysql://paysys:secret@localhost/abills?socket=/run/mysqld/mysqld.sock"
            ),
            "abills on /run/mysqld/mysqld.sock"
        );
    }
}
