//! `kiln`: the command line and the node daemon.

mod cli;
mod client;
mod cmd;
mod config;
mod mapped;
mod progress;
mod remote;
mod repo;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper must start before any thread does (see kiln_build::sandbox).
    if std::env::args_os().nth(1).as_deref() == Some(kiln_build::sandbox::HELPER_ARG.as_ref()) {
        kiln_build::sandbox::helper_main();
    }
    // The HTTP client's TLS (for `--node https://…` and remote pinning services) and the
    // listeners' use one crypto provider, ring, installed once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) && stdout_closed() {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether standard output is a pipe nobody reads any more (`kiln cat big | head` after
/// `head` exits): then a broken pipe is the reader's choice, not an error. A broken pipe
/// anywhere else — a connection to the daemon the other side closed — is an error.
fn stdout_closed() -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout; poll only reads and writes that struct.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n == 1 && fds.revents & libc::POLLERR != 0
}

/// `kiln cat big | head` should end quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.to_string().contains("Broken pipe")
    })
}
