//! `paysys report`: what was credited, cancelled and refused over a range of days, from our
//! own tables only (`paysys_txn`, `paysys_refusal`), read-only.
//!
//! **A payment's day is its `txn_date`'s**, as in [`crate::reconcile`]: the provider's own
//! payment time, so that a day of the report adds up to that day's registry. A refusal's day
//! is when we refused it (`paysys_refusal.at`).
//!
//! The database is asked one `GROUP BY` query per table for the whole range, inside one
//! read-only transaction; sums are added by the server in `DECIMAL` and read back as
//! `i128` kopecks, exactly.
//!
//! On a terminal, a [`Progress`] line names the query the server is working on: the work is
//! the server's `GROUP BY`, and a few rows come back only when it is done, so there is no
//! count to show, only the step. Nothing when stderr is not a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use mysql::prelude::Queryable;
use mysql::{AccessMode, Conn, TxOpts};

use crate::config::Config;
use crate::progress::Progress;
use crate::reconcile::{money, Total};

/// Exit codes: printed, or usage, config or database error.
pub const OK: u8 = 0;
pub const ERROR: u8 = 2;

/// The longest range one report covers.
const MAX_DAYS: i64 = 3700;

pub const USAGE: &str = "usage: paysys report --from YYYY-MM-DD --to YYYY-MM-DD [--system S]
         [--by day|system] [--format table|csv|html] [--config CONFIG]

What was credited, cancelled and refused from --from to --to (both days included), per day
(--by day, the default) or per payment system (--by system), from our own tables only
(paysys_txn and paysys_refusal; the database is only read).

  credited    count and sum of payments not cancelled
  cancelled   count and sum of payments cancelled since
  refused     count of pays refused (bad account, sum out of bounds, txn_date out of the
              window, conflicts, ...), and per answer comment (nod4, nod12, ...) with the
              reason of the latest as an example

A payment's day is the date of its txn_date (the provider's own payment time, as a
registry has it, and as `paysys reconcile` counts), not the time we committed it; a
refusal's day is when it was refused. Sums are exact, with two decimals.

  --system S       only this payment system (as named in paysys_txn; it may have left the
                   config since)
  --by day|system  one row per day of the range (days without payments show zeros), or
                   one per system
  --format F       table (default), csv (one header line, then a row per day or system;
                   a column per refusal comment), or html (one page without scripts or
                   network: a bar chart of credited sums, then the tables)
  --config CONFIG  default: $PAYSYS_CONFIG, or ../etc/paysys.toml next to this program

When stderr is a terminal, one line there names the query under way, wiped before the
report; otherwise only errors go there.

Exit status: 0 printed (also when there was nothing: zeros), 2 usage, config or database
error.";

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Day,
    System,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            By::Day => "day",
            By::System => "system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Html,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub system: Option<String>,
    pub by: By,
    pub format: Format,
    pub config: Option<PathBuf>,
}

/// `None` for `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let (mut from, mut to, mut system, mut config) = (None, None, None, None);
    let (mut by, mut format) = (By::Day, Format::Table);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !name.starts_with("--") {
            return Err(format!("unexpected argument '{arg}'"));
        }
        let value = match inline.or_else(|| rest.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        let date = |value: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| format!("{name} '{value}' is not a date YYYY-MM-DD"))
        };
        match name {
            "--from" => from = Some(date(&value)?),
            "--to" => to = Some(date(&value)?),
            "--system" => system = Some(value),
            "--config" => config = Some(PathBuf::from(value)),
            "--by" => {
                by = match value.as_str() {
                    "day" => By::Day,
                    "system" => By::System,
                    _ => return Err(format!("--by '{value}': day or system")),
                }
            }
            "--format" => {
                format = match value.as_str() {
                    "table" => Format::Table,
                    "csv" => Format::Csv,
                    "html" => Format::Html,
                    _ => return Err(format!("--format '{value}': table, csv or html")),
                }
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    let from = from.ok_or("--from YYYY-MM-DD is required: the first day")?;
    let to = to.ok_or("--to YYYY-MM-DD is required: the last day")?;
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(format!("at most {MAX_DAYS} days in one report"));
    }
    Ok(Some(Args {
        from,
        to,
        system,
        by,
        format,
        config,
    }))
}

/// One day's (or one system's) figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub credited: Total,
    pub cancelled: Total,
    pub refused: u64,
}

/// The refused pays of one day (or system) answered with one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub key: String,
    pub comment: String,
    pub count: u64,
    /// The latest one's `paysys_refusal.id` and reason.
    pub last_id: u64,
    pub reason: String,
}

/// Refusals with one comment over the whole range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByComment {
    pub comment: String,
    pub count: u64,
    /// The reason of the latest.
    pub reason: String,
}

/// The report: a row per key, in order, and the refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub system: Option<String>,
    pub by: By,
    pub rows: Vec<Row>,
    pub refused: Vec<Refused>,
}

impl Report {
    pub fn total(&self) -> Row {
        let mut total = Row {
            key: "total".into(),
            ..Row::default()
        };
        for r in &self.rows {
            total.credited.count += r.credited.count;
            total.credited.kopecks += r.credited.kopecks;
            total.cancelled.count += r.cancelled.count;
            total.cancelled.kopecks += r.cancelled.kopecks;
            total.refused += r.refused;
        }
        total
    }

    /// Refusals per comment over the range, the most frequent first.
    pub fn by_comment(&self) -> Vec<ByComment> {
        let mut map: BTreeMap<&str, (u64, u64, &str)> = BTreeMap::new();
        for r in &self.refused {
            let e = map.entry(&r.comment).or_insert((0, 0, ""));
            e.0 += r.count;
            if r.last_id >= e.1 {
                e.1 = r.last_id;
                e.2 = &r.reason;
            }
        }
        let mut list: Vec<ByComment> = map
            .into_iter()
            .map(|(comment, (count, _, reason))| ByComment {
                comment: comment.to_string(),
                count,
                reason: reason.to_string(),
            })
            .collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then(a.comment.cmp(&b.comment)));
        list
    }

    fn scope(&self) -> String {
        format!(
            "{} .. {}, {}",
            self.from,
            self.to,
            match &self.system {
                Some(s) => format!("system {s}"),
                None => "all systems".into(),
            }
        )
    }

    fn key_name(&self) -> &'static str {
        self.by.name()
    }
}

/// A `SUM` of `DECIMAL(16,2)` as the server writes it (`-12.5`, `1234.50`), in kopecks.
pub fn parse_kopecks(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    // Beyond kopecks the server writes only zeros.
    let (cents, beyond) = frac.split_at(frac.len().min(2));
    if beyond.bytes().any(|b| b != b'0') || whole.len() > 30 {
        return None;
    }
    let mut kopecks: i128 = whole.parse().ok()?;
    kopecks = kopecks * 100 + format!("{cents:0<2}").parse::<i128>().ok()?;
    Some(if negative { -kopecks } else { kopecks })
}

type TxnGroup = (String, u8, u64, String);
type RefusalGroup = (String, String, u64, u64, String);

/// Reads the range: one query on `paysys_txn`, one on `paysys_refusal`, each named on
/// `progress` while it runs. `systems`: the config's, shown with zeros when they had nothing
/// (`--by system`).
pub fn read(
    conn: &mut impl Queryable,
    args: &Args,
    systems: &[String],
    progress: &mut Progress,
) -> Result<Report, String> {
    let start = args.from.to_string();
    let end = args
        .to
        .succ_opt()
        .ok_or_else(|| format!("{} has no next day", args.to))?
        .to_string();
    let (txn_key, refusal_key) = match args.by {
        By::Day => (
            "DATE_FORMAT(txn_date, '%Y-%m-%d')",
            "DATE_FORMAT(at, '%Y-%m-%d')",
        ),
        By::System => ("system_name", "system_name"),
    };
    let system = args.system.as_deref();
    let range = format!("{} .. {}", args.from, args.to);
    progress.stage(&format!(
        "summing paysys_txn by {} over {range}…",
        args.by.name()
    ));
    let txns: Vec<TxnGroup> = conn
        .exec(
            format!(
                "SELECT CAST({txn_key} AS CHAR) AS k, IF(cancelled IS NULL, 0, 1) AS c, COUNT(*), \
                 CAST(SUM(amount) AS CHAR) FROM paysys_txn WHERE txn_date >= ? AND txn_date < ? \
                 AND (? IS NULL OR system_name = ?) GROUP BY k, c"
            ),
            (&start, &end, system, system),
        )
        .map_err(|e| format!("paysys_txn: {e}"))?;
    progress.stage(&format!(
        "counting paysys_refusal by {} over {range}…",
        args.by.name()
    ));
    let refused: Vec<RefusalGroup> = conn
        .exec(
            format!(
                "SELECT g.k, g.comment, g.n, g.last, r.reason FROM (SELECT CAST({refusal_key} AS CHAR) \
                 AS k, comment, COUNT(*) AS n, MAX(id) AS last FROM paysys_refusal WHERE at >= ? \
                 AND at < ? AND (? IS NULL OR system_name = ?) GROUP BY k, comment) g \
                 JOIN paysys_refusal r ON r.id = g.last ORDER BY g.k, g.n DESC, g.comment"
            ),
            (&start, &end, system, system),
        )
        .map_err(|e| {
            let hint = if crate::db::server_code(&e) == Some(1146) {
                ": load sql/paysys.sql again, which adds the table"
            } else {
                ""
            };
            format!("paysys_refusal: {e}{hint}")
        })?;

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let blank = |key: &str| Row {
        key: key.to_string(),
        ..Row::default()
    };
    match args.by {
        By::Day => {
            for day in args.from.iter_days().take_while(|d| *d <= args.to) {
                let key = day.to_string();
                rows.insert(key.clone(), blank(&key));
            }
        }
        By::System => {
            for s in systems
                .iter()
                .filter(|s| system.is_none_or(|only| only == s.as_str()))
            {
                rows.insert(s.clone(), blank(s));
            }
        }
    }
    for (key, cancelled, count, sum) in txns {
        let kopecks = parse_kopecks(&sum)
            .ok_or_else(|| format!("paysys_txn: the sum of {key} is '{sum}', not a sum"))?;
        let row = rows.entry(key.clone()).or_insert_with(|| blank(&key));
        let total = if cancelled == 0 {
            &mut row.credited
        } else {
            &mut row.cancelled
        };
        total.count += count;
        total.kopecks += kopecks;
    }
    let refused: Vec<Refused> = refused
        .into_iter()
        .map(|(key, comment, count, last_id, reason)| Refused {
            key,
            comment,
            count,
            last_id,
            reason,
        })
        .collect();
    for r in &refused {
        rows.entry(r.key.clone())
            .or_insert_with(|| blank(&r.key))
            .refused += r.count;
    }
    Ok(Report {
        from: args.from,
        to: args.to,
        system: args.system.clone(),
        by: args.by,
        rows: rows.into_values().collect(),
        refused,
    })
}

/// The report as a plain-text table.
pub fn write_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "paysys report {}, by {} (a payment's day is its txn_date's)",
        r.scope(),
        r.key_name()
    )?;
    writeln!(out)?;
    let total = r.total();
    let width = r
        .rows
        .iter()
        .map(|row| row.key.chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    let sum_width = money(total.credited.kopecks)
        .len()
        .max(money(total.cancelled.kopecks).len())
        .max(12);
    writeln!(
        out,
        "{:<width$}  {:>9}  {:>sum_width$}  {:>9}  {:>sum_width$}  {:>7}",
        r.key_name(),
        "credited",
        "sum",
        "cancelled",
        "sum",
        "refused"
    )?;
    for row in r.rows.iter().chain(std::iter::once(&total)) {
        writeln!(
            out,
            "{:<width$}  {:>9}  {:>sum_width$}  {:>9}  {:>sum_width$}  {:>7}",
            row.key,
            row.credited.count,
            money(row.credited.kopecks),
            row.cancelled.count,
            money(row.cancelled.kopecks),
            row.refused
        )?;
    }
    let by_comment = r.by_comment();
    if by_comment.is_empty() {
        writeln!(out, "\nno pay refused")?;
        return Ok(());
    }
    writeln!(out, "\nrefused pays by comment (the reason of the latest)")?;
    for c in &by_comment {
        writeln!(out, "  {:<10} {:>7}  {}", c.comment, c.count, c.reason)?;
    }
    writeln!(out, "\nrefused pays by {} and comment", r.key_name())?;
    for x in &r.refused {
        writeln!(out, "  {:<width$}  {:<10} {:>7}", x.key, x.comment, x.count)?;
    }
    Ok(())
}

/// A CSV field, quoted when it has to be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The report as CSV: one header line, then a row per key; a `refused:COMMENT` column per
/// comment of the range.
pub fn write_csv(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let mut comments: Vec<&str> = r.refused.iter().map(|x| x.comment.as_str()).collect();
    comments.sort_unstable();
    comments.dedup();
    let mut header = vec![
        r.key_name().to_string(),
        "credited".into(),
        "credited_sum".into(),
        "cancelled".into(),
        "cancelled_sum".into(),
        "refused".into(),
    ];
    header.extend(comments.iter().map(|c| format!("refused:{c}")));
    let header: Vec<String> = header.iter().map(|h| csv_field(h)).collect();
    writeln!(out, "{}", header.join(","))?;
    for row in &r.rows {
        let mut fields = vec![
            csv_field(&row.key),
            row.credited.count.to_string(),
            money(row.credited.kopecks),
            row.cancelled.count.to_string(),
            money(row.cancelled.kopecks),
            row.refused.to_string(),
        ];
        for c in &comments {
            let n: u64 = r
                .refused
                .iter()
                .filter(|x| x.key == row.key && x.comment == *c)
                .map(|x| x.count)
                .sum();
            fields.push(n.to_string());
        }
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn html_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// The bar chart of credited sums: one bar per row with payments.
fn svg_chart(r: &Report) -> String {
    const HEIGHT: f64 = 160.0;
    const BAR: usize = 14;
    const GAP: usize = 4;
    let max = r
        .rows
        .iter()
        .map(|row| row.credited.kopecks)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = (r.rows.len() * (BAR + GAP)).max(BAR + GAP);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" \
         role=\"img\" aria-label=\"credited sums by {}\">\n",
        HEIGHT as usize + 20,
        r.key_name()
    );
    for (i, row) in r.rows.iter().enumerate() {
        if row.credited.count == 0 {
            continue;
        }
        // Geometry only: the figures shown are exact.
        let h = ((row.credited.kopecks as f64 / max as f64) * HEIGHT).max(1.0);
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"{BAR}\" height=\"{h:.1}\" class=\"bar\">\
             <title>{}: {} ({} payments)</title></rect>",
            i * (BAR + GAP),
            HEIGHT - h,
            html_escape(&row.key),
            money(row.credited.kopecks),
            row.credited.count
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" class=\"axis\"/>"
    );
    if let (Some(first), Some(last)) = (r.rows.first(), r.rows.last()) {
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><text x=\"{width}\" y=\"{}\" \
             text-anchor=\"end\">{}</text>",
            HEIGHT + 15.0,
            html_escape(&first.key),
            HEIGHT + 15.0,
            html_escape(&last.key)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The report as one HTML page: inline CSS, an inline SVG chart, the tables; no scripts,
/// nothing fetched.
pub fn write_html(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let title = html_escape(&format!("paysys report {}", r.scope()));
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; }}\n\
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         tr.total td {{ font-weight: bold; }}\n\
         .bar {{ fill: #3a7bd5; }}\n.axis {{ stroke: #888; }}\n\
         svg text {{ font-size: 11px; fill: #555; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>By {}. A payment's day is the date of its txn_date; a refusal's, when it was \
         refused. Credited: not cancelled.</p>\n<h2>Credited sums</h2>\n",
        r.key_name()
    );
    page.push_str(&svg_chart(r));
    let _ = write!(
        page,
        "<h2>Payments</h2>\n<table>\n<tr><th>{}</th><th>credited</th><th>sum</th>\
         <th>cancelled</th><th>sum</th><th>refused</th></tr>\n",
        r.key_name()
    );
    let total = r.total();
    for row in r.rows.iter().chain(std::iter::once(&total)) {
        let class = if std::ptr::eq(row, &total) {
            " class=\"total\""
        } else {
            ""
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            html_escape(&row.key),
            row.credited.count,
            money(row.credited.kopecks),
            row.cancelled.count,
            money(row.cancelled.kopecks),
            row.refused
        );
    }
    page.push_str("</table>\n<h2>Refused pays by comment</h2>\n");
    let by_comment = r.by_comment();
    if by_comment.is_empty() {
        page.push_str("<p>No pay refused.</p>\n");
    } else {
        page.push_str(
            "<table>\n<tr><th>comment</th><th>count</th><th>reason of the latest</th></tr>\n",
        );
        for c in &by_comment {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                html_escape(&c.comment),
                c.count,
                html_escape(&c.reason)
            );
        }
        let _ = write!(
            page,
            "</table>\n<h2>Refused pays by {} and comment</h2>\n<table>\n\
             <tr><th>{}</th><th>comment</th><th>count</th></tr>\n",
            r.key_name(),
            r.key_name()
        );
        for x in &r.refused {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                html_escape(&x.key),
                html_escape(&x.comment),
                x.count
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body>\n</html>\n");
    out.write_all(page.as_bytes())
}

/// `paysys report …`; `config_path` resolves the config as the other commands do.
pub fn command(args: &[String], config_path: impl Fn(Option<PathBuf>) -> PathBuf) -> u8 {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return OK;
        }
        Err(why) => {
            eprintln!("paysys report: {why}\n{USAGE}");
            return ERROR;
        }
    };
    match run(&args, &config_path(args.config.clone())) {
        Ok(()) => OK,
        Err(why) => {
            eprintln!("paysys report: {why}");
            ERROR
        }
    }
}

fn run(args: &Args, config: &Path) -> Result<(), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let systems: Vec<String> = config.systems.iter().map(|s| s.name.clone()).collect();
    // Cleared before the report is printed, and when an error returns.
    let mut progress = Progress::stderr();
    let mut conn: Conn = crate::db::connect(&config.database, crate::db::Use::Read)
        .map_err(|e| format!("database: {e}"))?;
    // One snapshot for both queries, and a server-side promise that nothing is written.
    let mut tx = conn
        .start_transaction(
            TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(AccessMode::ReadOnly)),
        )
        .map_err(|e| format!("database: {e}"))?;
    let report =
        read(&mut tx, args, &systems, &mut progress).map_err(|e| format!("database: {e}"))?;
    drop(tx);
    progress.clear();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Table => write_table(&mut out, &report),
        Format::Csv => write_csv(&mut out, &report),
        Format::Html => write_html(&mut out, &report),
    };
    // A closed pipe (`| head`) is the reader's choice.
    let _ = written.and_then(|()| out.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sums_are_read_exactly() {
        assert_eq!(parse_kopecks("1234.50"), Some(123450));
        assert_eq!(parse_kopecks("-3.5"), Some(-350));
        assert_eq!(parse_kopecks("7"), Some(700));
        assert_eq!(parse_kopecks("0.0500"), Some(5));
        assert_eq!(
            parse_kopecks("92233720368547758070.01"),
            Some(9223372036854775807001)
        );
        for bad in ["", "1e3", "1.005", "abc", "-", ".5"] {
            assert_eq!(parse_kopecks(bad), None, "{bad}");
        }
    }

    #[test]
    fn arguments() {
        let a = parse_args(&s(&["--from", "2024-05-01", "--to=2024-05-31"]))
            .unwrap()
            .unwrap();
        assert_eq!((a.by, a.format, a.system), (By::Day, Format::Table, None));
        let a = parse_args(&s(&[
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-01",
            "--by",
            "system",
            "--format",
            "html",
            "--system",
            "qiwi",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((a.by, a.format), (By::System, Format::Html));
        assert_eq!(a.system.as_deref(), Some("qiwi"));
        assert_eq!(parse_args(&s(&["--help"])).unwrap(), None);
        for bad in [
            &["--from", "2024-05-01"][..],
            &["--from", "2024-05-02", "--to", "2024-05-01"],
            &["--from", "1.5.2024", "--to", "2024-05-01"],
            &["--from", "2024-05-01", "--to", "2024-05-01", "--by", "week"],
            &[
                "--from",
                "2024-05-01",
                "--to",
                "2024-05-01",
                "--format",
                "pdf",
            ],
            &["--from", "2024-05-01", "--to", "2024-05-01", "extra"],
            &["--from", "2024-05-01", "--to"],
        ] {
            assert!(parse_args(&s(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn html_is_escaped_and_has_a_bar_per_day_with_payments() {
        let row = |key: &str, count: u64, kopecks: i128| Row {
            key: key.into(),
            credited: Total { count, kopecks },
            ..Row::default()
        };
        let report = Report {
            from: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 5, 3).unwrap(),
            system: None,
            by: By::Day,
            rows: vec![
                row("2024-05-01", 2, 1050),
                row("2024-05-02", 0, 0),
                row("2024-05-03", 1, 99),
            ],
            refused: vec![Refused {
                key: "2024-05-01".into(),
                comment: "nod4".into(),
                count: 1,
                last_id: 1,
                reason: "<script>alert(1)</script>".into(),
            }],
        };
        let mut out = Vec::new();
        write_html(&mut out, &report).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert_eq!(page.matches("<rect").count(), 2, "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
    }
}
