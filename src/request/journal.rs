//! `var/log/paysys_check.log`: one line per request, greppable.
//!
//! ```text
//! 2026-11-22 10:00:01 +0200 pid=4242 ip=10.0.0.7 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn=18 ms=3.1 comment="OK"
//! ```
//!
//! Each line is written with a single `write()` on a file opened with `O_APPEND`, so lines
//! from concurrent CGI processes never interleave and log rotation needs no signal. A log
//! failure never changes a payment's outcome: the line goes to stderr instead, which the
//! web server keeps in its error log.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, Local};

/// Longest value written; a 10 MB parameter must not become a 10 MB log line.
const VALUE_MAX: usize = 256;

/// One request's line, built field by field. Values are quoted and escaped as needed.
pub struct Line {
    text: String,
}

impl Line {
    pub fn new(at: DateTime<Local>, pid: u32) -> Line {
        let mut text = at.format("%Y-%m-%d %H:%M:%S %z").to_string();
        let _ = write!(text, " pid={pid}");
        Line { text }
    }

    /// A line that starts with `prefix` instead of the time and pid: a listing's line
    /// (`paysys requests`), written with the log line's quoting.
    pub fn plain(prefix: &str) -> Line {
        Line {
            text: prefix.to_string(),
        }
    }

    /// [`Line::quoted`] without the length cap: a listing shows the whole value, still on
    /// one line.
    pub fn quoted_whole(mut self, key: &str, value: &str) -> Line {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push_str("=\"");
        push_escaped_max(&mut self.text, value, usize::MAX);
        self.text.push('"');
        self
    }

    /// Adds `key=value`; an empty value is left out, so `grep` sees only what was there.
    pub fn field(mut self, key: &str, value: &str) -> Line {
        if !value.is_empty() {
            self.text.push(' ');
            self.text.push_str(key);
            self.text.push('=');
            push_value(&mut self.text, value);
        }
        self
    }

    /// Adds `key="value"`, always quoted (free text such as `comment`).
    pub fn quoted(mut self, key: &str, value: &str) -> Line {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push_str("=\"");
        push_escaped(&mut self.text, value);
        self.text.push('"');
        self
    }

    pub fn finish(mut self) -> String {
        self.text.push('\n');
        self.text
    }
}

fn needs_quotes(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '='))
}

fn push_value(out: &mut String, value: &str) {
    if needs_quotes(value) {
        out.push('"');
        push_escaped(out, value);
        out.push('"');
    } else {
        push_escaped(out, value);
    }
}

/// Backslash escapes for `\`, `"` and every control character, so a CR/LF or NUL sent by a
/// caller can never start a forged line.
fn push_escaped(out: &mut String, value: &str) {
    push_escaped_max(out, value, VALUE_MAX)
}

fn push_escaped_max(out: &mut String, value: &str, max: usize) {
    for (i, c) in value.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Appends `line` to `path` in one write, creating the file (and its directory) if needed.
pub fn append(path: &Path, line: &str) -> io::Result<()> {
    let open = || OpenOptions::new().create(true).append(true).open(path);
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        other => other?,
    };
    // `write_all` on a regular file opened O_APPEND is one write() for a line this size;
    // a short write is reported rather than retried, so a line is never split.
    let written = file.write(line.as_bytes())?;
    if written != line.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", line.len()),
        ));
    }
    Ok(())
}

/// Appends, or says on stderr why it could not and what the line was.
pub fn record(path: &Path, line: &str) {
    if let Err(e) = append(path, line) {
        log::error!(
            "cannot write log {}: {e}; the line was: {}",
            path.display(),
            line.trim_end()
        );
        // Without a logger set up, `log` prints nothing: make sure stderr has it.
        if !log::log_enabled!(log::Level::Error) {
            eprintln!(
                "paysys: cannot write log {}: {e}; the line was: {}",
                path.display(),
                line.trim_end()
            );
        }
    }
}

/// Writes `line` to stderr in one write (`[log] file = false`): the web server keeps it in
/// its error log.
pub fn to_stderr(line: &str) {
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// The lines of the log at `path` about txn `txn_id` (of `system`, when given): those with
/// the field `txn=<txn_id>` exactly, in file order. A missing log is no lines.
pub fn lines_about(
    path: &Path,
    txn_id: &crate::domain::TxnId,
    system: Option<&str>,
) -> io::Result<Vec<String>> {
    lines_with(path, &format!("txn={txn_id}"), system)
}

/// The lines of the log at `path` with the field `field` (`key=value` exactly as the log
/// writes it) — and `system=<system>`, when given — in file order. A missing log is no
/// lines.
pub fn lines_with(path: &Path, field: &str, system: Option<&str>) -> io::Result<Vec<String>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let txn_field = field;
    let system_field = system.map(|s| format!("system={s}"));
    // Fields are space-separated and a txn id is digits, so a whole-word match is exact:
    // `txn=66` does not find `txn=666`.
    let has = |line: &str, field: &str| line.split(' ').any(|word| word == field);
    Ok(text
        .lines()
        .filter(|line| has(line, txn_field))
        .filter(|line| system_field.as_deref().is_none_or(|f| has(line, f)))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_about_a_txn_match_the_whole_field() {
        let path = std::env::temp_dir().join(format!("paysys-journal-{}.log", std::process::id()));
        std::fs::write(
            &path,
            "a system=osmp cmd=pay txn=666 result=0\n\
             b system=osmp cmd=pay txn=6666 result=0\n\
             c system=qiwi cmd=pay txn=666 result=1\n\
             d system=osmp cmd=check account=666 result=0\n",
        )
        .unwrap();
        let txn = crate::domain::TxnId::parse("666").unwrap();
        let all = lines_about(&path, &txn, None).unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        let osmp = lines_about(&path, &txn, Some("osmp")).unwrap();
        assert_eq!(
            osmp,
            vec!["a system=osmp cmd=pay txn=666 result=0".to_string()]
        );
        std::fs::remove_file(&path).unwrap();
        assert!(lines_about(&path, &txn, None).unwrap().is_empty());
    }
    use chrono::TimeZone;

    fn at() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap()
    }

    #[test]
    fn a_line_reads_like_the_design() {
        let line = Line::new(at(), 4242)
            .field("ip", "10.0.0.7")
            .field("system", "osmp")
            .field("cmd", "pay")
            .field("txn", "666")
            .field("account", "59071")
            .field("sum", "10.25")
            .field("result", "0")
            .field("prv_txn", "18")
            .field("ms", "3.1")
            .quoted("comment", "OK")
            .finish();
        assert!(line.starts_with("2026-11-22 10:00:01 "), "{line}");
        assert!(line.ends_with(
            " pid=4242 ip=10.0.0.7 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn=18 ms=3.1 comment=\"OK\"\n"
        ));
    }

    #[test]
    fn hostile_values_stay_on_one_line() {
        let line = Line::new(at(), 1)
            .field("txn", "1\r\n2026-11-22 fake line result=0")
            .field("account", "a\"b\\c\0")
            .field("empty", "")
            .quoted("detail", &"x".repeat(10_000))
            .finish();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.contains("txn=\"1\\r\\n2026-11-22 fake line result=0\""),
            "{line}"
        );
        assert!(line.contains("account=\"a\\\"b\\\\c\\x00\""), "{line}");
        assert!(!line.contains("empty="));
        assert!(line.len() < 600, "{}", line.len());
    }

    #[test]
    fn append_creates_and_appends() {
        let dir = std::env::temp_dir().join(format!("paysys-journal-{}", std::process::id()));
        let path = dir.join("var/log/paysys_check.log");
        append(&path, "one\n").unwrap();
        append(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert!(append(Path::new("/dev/full"), "x\n").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
