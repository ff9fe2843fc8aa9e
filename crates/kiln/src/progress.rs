//! Progress on stderr. Bars: only for large inputs and only when stderr is a terminal,
//! unless forced with `--progress`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Inputs smaller than this finish too quickly for a bar to help.
const MIN_BYTES: u64 = 8 << 20;

/// A byte progress bar (bytes, rate, ETA) for `total` bytes, or a counter when the total is
/// unknown (stdin); hidden when not wanted.
/// `total` is only called when a bar may be shown (walking a tree to size it costs I/O).
pub fn bytes(total: impl FnOnce() -> Option<u64>, force: Option<bool>) -> ProgressBar {
    if force == Some(false) || (force.is_none() && !std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let total = total();
    if force.is_none() && total.is_some_and(|t| t < MIN_BYTES) {
        return ProgressBar::hidden();
    }
    let template = match total {
        Some(_) => {
            "{spinner} {bytes:>10}/{total_bytes:<10} [{bar:30}] {binary_bytes_per_sec:>12}  ETA {eta}"
        }
        None => "{spinner} {bytes:>10} {binary_bytes_per_sec:>12}  {elapsed}",
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Print one build event as `kiln build` shows it on standard error (the same lines for a
/// build run here and one followed on the daemon).
pub fn build_event(err: &mut dyn std::io::Write, ev: &kiln_wire::BuildEvent) {
    if let Some(line) = kiln_node::text::event_line(ev) {
        let _ = writeln!(err, "{line}");
    }
}
