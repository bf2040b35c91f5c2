//! What a long run of the admin's command line is doing, on one line of a terminal.
//!
//! `paysys report` and `paysys reconcile` can spend seconds on a big month or registry. When
//! stderr is a terminal they say what they are at — "reading the registry: line 40 000
//! (35 %)…" — on a single line rewritten in place with `\r`. When it is not (a script, cron,
//! a test, `2> file`), nothing at all is written: their output stays byte for byte what it
//! was.
//!
//! A [`Progress::stage`] (a new step; a run has a few) is drawn at once, so the line always
//! names the step that is under way, however long it takes. A [`Progress::tick`] (a count
//! within the step, called as often as rows come) is drawn at most once per [`INTERVAL`].
//! [`Progress::clear`] wipes the line (`\r`, spaces, `\r`) before the results are printed;
//! dropping a `Progress` does the same, so an error message starts on a clean line.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// The least time between two counts on the screen.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The longest line drawn, in characters: one that wraps could not be rewritten with `\r`.
const WIDTH: usize = 79;

/// One progress line; `W` is where it goes (stderr, or a buffer in tests).
pub struct Progress<W: Write = io::Stderr> {
    /// `None`: not a terminal, nothing is written.
    out: Option<W>,
    /// When the line was last drawn.
    last: Option<Instant>,
    /// Characters of the line now on the screen.
    shown: usize,
}

impl Progress {
    /// On stderr if it is a terminal; otherwise silent.
    pub fn stderr() -> Progress {
        let err = io::stderr();
        Progress::new(err.is_terminal().then_some(err))
    }

    /// Writes nothing.
    pub fn silent() -> Progress {
        Progress::new(None)
    }
}

impl<W: Write> Progress<W> {
    /// Draws on `out`, or nothing when `None`.
    pub fn new(out: Option<W>) -> Progress<W> {
        Progress {
            out,
            last: None,
            shown: 0,
        }
    }

    /// A new step: shown now.
    pub fn stage(&mut self, text: &str) {
        self.draw(Instant::now(), text);
    }

    /// A count within the step: shown if the line has not been drawn for [`INTERVAL`].
    /// `text` is only called then.
    pub fn tick(&mut self, text: impl FnOnce() -> String) {
        self.tick_at(Instant::now(), text);
    }

    fn tick_at(&mut self, now: Instant, text: impl FnOnce() -> String) {
        if self.out.is_none() || self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.draw(now, &text());
    }

    /// Wipes the line, leaving the cursor where the line began.
    pub fn clear(&mut self) {
        if self.shown > 0 {
            let blank = format!("\r{:width$}\r", "", width = self.shown);
            self.shown = 0;
            self.write(&blank);
        }
    }

    fn draw(&mut self, now: Instant, text: &str) {
        if self.out.is_none() {
            return;
        }
        let text = fit(text);
        let len = text.chars().count();
        // Spaces over whatever of a longer line before would still show.
        let pad = self.shown.saturating_sub(len);
        self.shown = len;
        self.last = Some(now);
        self.write(&format!("\r{text}{:pad$}", ""));
    }

    fn write(&mut self, text: &str) {
        if let Some(out) = self.out.as_mut() {
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                // A terminal that cannot be written to gets no more progress; the run goes on.
                self.out = None;
            }
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `text` cut to [`WIDTH`] characters, the last of them `…` when it was cut.
fn fit(text: &str) -> String {
    if text.chars().count() <= WIDTH {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(WIDTH - 1).collect();
    cut.push('…');
    cut
}

/// A count with its thousands apart, as people read them: `40 000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(' ');
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(p: &Progress<Vec<u8>>) -> String {
        String::from_utf8(p.out.clone().unwrap_or_default()).unwrap()
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1000, "1 000"),
            (12000, "12 000"),
            (123456, "123 456"),
            (1234567, "1 234 567"),
            (u64::MAX, "18 446 744 073 709 551 615"),
        ] {
            assert_eq!(count(n), text, "{n}");
        }
    }

    #[test]
    fn without_a_terminal_nothing_is_written() {
        let mut p = Progress::silent();
        p.stage("reading");
        p.tick(|| panic!("a silent progress formats nothing"));
        p.clear();
        assert!(p.out.is_none());
    }

    #[test]
    fn a_stage_shows_at_once_and_counts_at_most_once_an_interval() {
        let mut p = Progress::new(Some(Vec::new()));
        p.stage("reading the registry…");
        let drawn = p.last.expect("a stage is drawn");
        let (soon, later) = (
            drawn + Duration::from_millis(100),
            drawn + Duration::from_millis(250),
        );
        p.tick_at(soon, || panic!("drawn too soon"));
        p.tick_at(later, || "reading the registry: 1 000 lines…".into());
        p.tick_at(later + Duration::from_millis(249), || {
            panic!("drawn too soon")
        });
        // A new stage does not wait.
        p.stage("looking up");
        assert_eq!(
            screen(&p),
            "\rreading the registry…\
             \rreading the registry: 1 000 lines…\
             \rlooking up                        "
        );
    }

    #[test]
    fn the_first_count_shows_at_once() {
        let mut p = Progress::new(Some(Vec::new()));
        p.tick(|| "12 rows".into());
        assert_eq!(screen(&p), "\r12 rows");
    }

    #[test]
    fn clearing_wipes_what_is_shown_once() {
        let mut p = Progress::new(Some(Vec::new()));
        p.clear();
        assert_eq!(screen(&p), "");
        p.stage("day 12 of 30");
        p.clear();
        p.clear();
        assert_eq!(screen(&p), "\rday 12 of 30\r            \r");
    }

    #[test]
    fn a_long_line_is_cut_to_fit_a_terminal() {
        let long = "x".repeat(200);
        assert_eq!(fit(&long).chars().count(), WIDTH);
        assert!(fit(&long).ends_with("x…"));
        assert_eq!(fit("short"), "short");
        let mut p = Progress::new(Some(Vec::new()));
        p.stage(&long);
        assert_eq!(p.shown, WIDTH);
    }
}
