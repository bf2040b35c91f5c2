//! `paysys`: the admin's command line.
//!
//! ```text
//! paysys check-config [CONFIG]   read the config (and its paysys.d/ overlays) as the CGIs
//!                                would, and report the first error with file, line and key
//! paysys code ID...              NoDeny personal payment codes for subscriber ids
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use paysys::config::{self, Config};
use paysys::domain::PaymentCode;

const USAGE: &str = "usage:
  paysys check-config [CONFIG]   check etc/paysys.toml (default: $PAYSYS_CONFIG, or ../etc/paysys.toml
                                 next to this program) and its paysys.d/ overlays
  paysys code ID...              print the NoDeny payment code of each subscriber id";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check-config") => check_config(args.get(1).map(PathBuf::from)),
        Some("code") if args.len() > 1 => code(&args[1..]),
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

fn check_config(path: Option<PathBuf>) -> ExitCode {
    let path = path.unwrap_or_else(|| {
        let env = std::env::var_os("PAYSYS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let exe = std::env::current_exe().ok();
        config::locate(env.as_deref(), exe.as_deref())
    });
    match Config::load(&path) {
        Err(e) => {
            eprintln!("paysys: {e}");
            ExitCode::FAILURE
        }
        Ok(c) => {
            for file in &c.files {
                println!("read     {}", file.display());
            }
            println!("billing  {}", c.database.billing);
            println!(
                "log      {}{}",
                c.log.file.display(),
                if c.log.debug { " (debug)" } else { "" }
            );
            for s in &c.systems {
                println!(
                    "system   {} protocol={} account={:?} sums={}..{} window={}h{}{}",
                    s.name,
                    s.protocol,
                    s.account,
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
            }
            if c.systems.is_empty() {
                println!("warning  no [[system]]: every caller will be refused");
            }
            println!("ok");
            ExitCode::SUCCESS
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
