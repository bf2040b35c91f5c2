//! Commands the admin runs around payments (ABillS: "Запуск команд перед/после оплатой"):
//! `[hooks] before_payment`, `after_payment` and `notify`.
//!
//! A hook is an executable and its arguments, run without a shell: nothing a caller sends
//! can become part of a command line. What it needs arrives in environment variables
//! (`PAYSYS_SYSTEM`, `PAYSYS_TXN_ID`, `PAYSYS_ACCOUNT`, `PAYSYS_UID`, `PAYSYS_SUM`,
//! `PAYSYS_PRV_TXN`) in an otherwise empty environment but for `PATH`; `notify` also gets a
//! short message on stdin (feed it to `sendmail -t`). Every run is bounded by
//! `[hooks] timeout`: a hook still running then is killed.
//!
//! - `before_payment` runs before a new payment is credited (never for a repeat, which
//!   gets its first answer): exit 0 lets it through, anything else refuses it (OSMP 7) with
//!   the hook's first line of output as the reason in the log. A hook that cannot be run
//!   or does not finish in time is a temporary error: the terminal retries.
//! - `after_payment` runs after COMMIT of a new payment; whatever it does, the payment
//!   stands and is answered as paid. Its failure is noted in the log line.
//! - `notify` is fed a message for each new payment and each refused unknown caller; its
//!   failures are noted in the log line only.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// An executable and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl std::fmt::Display for HookCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program.display())?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// The `[hooks]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub before_payment: Option<HookCommand>,
    pub after_payment: Option<HookCommand>,
    pub notify: Option<HookCommand>,
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            before_payment: None,
            after_payment: None,
            notify: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        }
    }
}

/// Seconds a hook may run when `[hooks] timeout` does not say: well inside the minute a
/// terminal waits for its answer.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// How a hook run ended, when not with exit status 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// It ran and said no (exit status, and the first line it printed).
    Refused(String),
    /// It could not be started, or did not finish in time: nobody said no.
    Broken(String),
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::Refused(why) | HookError::Broken(why) => f.write_str(why),
        }
    }
}

/// The `PATH` a hook gets: the system's directories, nothing from the web server.
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Most bytes of a hook's output kept (for the log); the rest is read and dropped.
const OUTPUT_KEPT: usize = 2048;

/// Runs `cmd` with `env` (and `stdin`, if any), at most `timeout`.
pub fn run(
    cmd: &HookCommand,
    env: &[(&str, String)],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<(), HookError> {
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env_clear()
        .env("PATH", HOOK_PATH)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls. The persistent mode
    // blocks SIGTERM in its threads, and a hook must not inherit that (it could not be
    // stopped); a process group of its own lets a timeout kill whatever it started too.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| HookError::Broken(format!("{cmd}: cannot run: {e}")))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        // A hook that does not read its input is its own business: a broken pipe is fine.
        let _ = input.write_all(text.as_bytes());
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = wait(&mut child, timeout);
    // Output that is not there shortly after the hook ended comes from something it left
    // running with its pipes: not worth waiting for.
    let output = |r: Option<std::sync::mpsc::Receiver<String>>| {
        r.and_then(|r| r.recv_timeout(Duration::from_millis(200)).ok())
            .unwrap_or_default()
    };
    let (out, err) = (output(out), output(err));
    let first_line = err
        .lines()
        .chain(out.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
        .unwrap_or_default();
    match status {
        Some(Ok(s)) if s.success() => Ok(()),
        Some(Ok(s)) => Err(HookError::Refused(format!("{cmd}: {s}{first_line}"))),
        Some(Err(e)) => Err(HookError::Broken(format!("{cmd}: {e}"))),
        None => Err(HookError::Broken(format!(
            "{cmd}: still running after {} s, killed",
            timeout.as_secs()
        ))),
    }
}

/// Reads a child's output in a thread of its own, so a hook that prints much never blocks
/// on a full pipe; keeps the first [`OUTPUT_KEPT`] bytes.
fn reader(pipe: Option<impl Read + Send + 'static>) -> Option<std::sync::mpsc::Receiver<String>> {
    let mut pipe = pipe?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hook-output".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = OUTPUT_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
        })
        .ok()?;
    Some(rx)
}

/// The child's exit status, or `None` if it was still running after `timeout` (then it has
/// been killed and reaped).
fn wait(child: &mut Child, timeout: Duration) -> Option<std::io::Result<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                // The whole group: the hook and whatever it started.
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: a plain kill(2) of the group the child leads (setpgid above).
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> HookCommand {
        HookCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn exit_status_decides() {
        assert_eq!(run(&sh("exit 0"), &[], None, SECOND), Ok(()));
        match run(&sh("echo 'no money today' >&2; exit 3"), &[], None, SECOND) {
            Err(HookError::Refused(why)) => {
                assert!(
                    why.contains("exit status: 3") && why.contains("no money today"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_environment_is_ours_alone() {
        std::env::set_var("PAYSYS_LEAK_TEST", "leaked");
        let env = [("PAYSYS_ACCOUNT", "a'b\"c; rm -rf /".to_string())];
        let cmd = sh(
            r#"[ "$PAYSYS_ACCOUNT" = "a'b\"c; rm -rf /" ] && [ -z "$PAYSYS_LEAK_TEST" ] && [ -n "$PATH" ]"#,
        );
        assert_eq!(run(&cmd, &env, None, SECOND), Ok(()));
    }

    #[test]
    fn stdin_is_fed_and_output_bounded() {
        let cmd = sh(r#"read line; [ "$line" = "hello" ] && head -c 1000000 /dev/zero"#);
        assert_eq!(run(&cmd, &[], Some("hello\n"), SECOND * 5), Ok(()));
    }

    #[test]
    fn a_slow_or_missing_hook_is_broken_not_refused() {
        let started = Instant::now();
        match run(&sh("sleep 30"), &[], None, Duration::from_millis(200)) {
            Err(HookError::Broken(why)) => assert!(why.contains("killed"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        let missing = HookCommand {
            program: "/nonexistent/hook".into(),
            args: vec![],
        };
        assert!(matches!(
            run(&missing, &[], None, SECOND),
            Err(HookError::Broken(_))
        ));
    }
}
