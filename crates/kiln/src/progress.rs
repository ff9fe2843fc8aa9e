//! Progress bars on stderr (only when it is a terminal, unless forced).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A byte progress bar, or a hidden one.
pub fn bytes(total: u64, force: Option<bool>) -> ProgressBar {
    let show = force.unwrap_or_else(|| std::io::stderr().is_terminal());
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {bytes:>10}/{total_bytes:<10} [{bar:30}] {binary_bytes_per_sec:>12}  ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
