//! Progress for people: bars for uploads and downloads, a spinner while a
//! job waits. Drawn on stderr only when it is a terminal; piped or in a
//! script, nothing is drawn (and waits print one line per change).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use suanli_net::{Direction, Progress};

fn stderr_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A progress hook drawing one bar per blob transfer.
pub fn transfers() -> Progress {
    let current: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Arc::new(move |direction, done, total| {
        let mut current = current.lock().unwrap_or_else(|e| e.into_inner());
        let bar = current.get_or_insert_with(|| transfer_bar(direction, total));
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
            *current = None;
        }
    })
}

fn transfer_bar(direction: Direction, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), stderr_target());
    let style = ProgressStyle::with_template(
        "{msg:11} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(match direction {
        Direction::Upload => "uploading",
        Direction::Download => "downloading",
    });
    bar
}

/// Shows a job's state while waiting: a spinner on a terminal, else one
/// line on stderr per change.
pub struct Waiting {
    spinner: Option<ProgressBar>,
    last: String,
}

impl Waiting {
    pub fn new() -> Waiting {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let s = ProgressBar::with_draw_target(None, stderr_target());
            s.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            s.enable_steady_tick(Duration::from_millis(120));
            s
        });
        Waiting {
            spinner,
            last: String::new(),
        }
    }

    /// The job's state now, e.g. `queued: waiting for a node`.
    pub fn show(&mut self, line: String) {
        if line == self.last {
            return;
        }
        match &self.spinner {
            Some(s) => s.set_message(line.clone()),
            None => eprintln!("{line}"),
        }
        self.last = line;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(s) = &self.spinner {
            s.finish_and_clear();
        }
    }
}
