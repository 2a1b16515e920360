//! Terminal output: colour and the progress bar only where a person watches a terminal. Colour
//! is off when `NO_COLOR` is set to anything but the empty string (https://no-color.org); the bar
//! needs a terminal on stderr and is drawn on one line that each progress line replaces.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// Colour on a terminal unless `NO_COLOR` is set and not empty.
pub fn colour_wanted(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Whether stderr gets colour.
pub fn stderr_colour() -> bool {
    colour_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
}

/// An outcome's tone: completed is good, a clean stop or rollback a warning, the rest bad.
pub fn outcome_tone(outcome: &str) -> Tone {
    match outcome {
        "completed" => Tone::Good,
        "rolled_back" | "aborted" | "completed_with_errors" => Tone::Warn,
        _ => Tone::Bad,
    }
}

/// `text` in its tone's colour when `on`, else unchanged.
pub fn paint(text: &str, tone: Tone, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Warn => "33",
        Tone::Bad => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A bar of `width` cells, `percent` of them filled: `[=======>      ]  58%`.
pub fn bar(percent: f64, width: usize) -> String {
    let p = percent.clamp(0.0, 100.0);
    let filled = ((p / 100.0) * width as f64).round() as usize;
    let mut s = String::with_capacity(width + 8);
    s.push('[');
    for i in 0..width {
        s.push(if i + 1 < filled || (i + 1 == filled && filled == width) {
            '='
        } else if i + 1 == filled {
            '>'
        } else {
            ' '
        });
    }
    s.push_str(&format!("] {p:>3.0}%"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert_eq!(paint("completed", Tone::Good, false), "completed");
        assert_eq!(
            paint("failed", outcome_tone("failed"), true),
            "\x1b[31mfailed\x1b[0m"
        );
        assert_eq!(outcome_tone("rolled_back"), Tone::Warn);
    }

    #[test]
    fn the_bar_fills_with_the_percentage() {
        assert_eq!(bar(0.0, 10), "[          ]   0%");
        assert_eq!(bar(50.0, 10), "[====>     ]  50%");
        assert_eq!(bar(100.0, 10), "[==========] 100%");
        assert_eq!(bar(250.0, 4), "[====] 100%");
    }
}
