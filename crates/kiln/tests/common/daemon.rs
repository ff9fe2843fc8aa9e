//! A running `kiln daemon` and raw HTTP/1.1 requests to it.

use super::Repo;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub api: String,
    pub gateway: String,
    /// The daemon's standard error (its log).
    pub log: std::path::PathBuf,
}

impl Daemon {
    /// Start on ephemeral ports; returns once it prints `Daemon is ready`.
    pub fn start(r: &Repo) -> Daemon {
        Daemon::start_with(
            r,
            &[
                "--api",
                "127.0.0.1:0",
                "--gateway",
                "127.0.0.1:0",
                "--open-loopback",
            ],
        )
    }

    /// Start with these `kiln daemon` arguments (they must make it bind and print addresses).
    pub fn start_with(r: &Repo, args: &[&str]) -> Daemon {
        Daemon::start_with_env(r, args, &[])
    }

    /// [`Daemon::start_with`], with these environment variables set (e.g. `RUST_LOG`).
    pub fn start_with_env(r: &Repo, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = r
            .cmd()
            .envs(env.iter().copied())
            .arg("daemon")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(r.path("daemon.log")).expect("daemon log"))
            .spawn()
            .expect("spawn daemon");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut api, mut gateway) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.expect("line");
            let addr = |l: &str, p: &str| {
                let rest = l.strip_prefix(p)?;
                rest.strip_prefix("http://")
                    .or_else(|| rest.strip_prefix("https://"))
                    .map(str::to_string)
            };
            if let Some(a) = addr(&line, "API listening on ") {
                api = a;
            } else if let Some(g) = addr(&line, "Gateway listening on ") {
                gateway = g;
            } else if line == "Daemon is ready" {
                break;
            }
        }
        assert!(
            !api.is_empty() && !gateway.is_empty(),
            "addresses not printed"
        );
        Daemon {
            child,
            api,
            gateway,
            log: r.path("daemon.log"),
        }
    }

    /// SIGKILL, as a crash would, and reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill daemon");
        self.child.wait().expect("wait daemon");
    }

    /// SIGTERM, then wait (at most 10 s) for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                if !st.success() {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    eprintln!("daemon exited with {st:?}; its log:\n{log}");
                }
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A test that fails before `stop` must not leave its daemon running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response: status, the header block as text, the (de-chunked) body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    /// False when a chunked body stopped before its last chunk (the server aborted it).
    pub complete: bool,
}

impl Reply {
    /// The value of a header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request; a body is read to the end of the connection.
pub fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    request_as(addr, addr, method, target, headers)
}

/// Like [`request`] with the `Host` header given.
pub fn request_as(
    addr: &str,
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    request_full(addr, host, method, target, headers, b"")
}

/// Like [`request`] with a request body.
pub fn request_with_body(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    request_full(addr, addr, method, target, headers, body)
}

fn request_full(
    addr: &str,
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    // A server that answers before reading the whole body may close early: read its answer.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let Some(split) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        // The server closed the connection without answering (an aborted response).
        return Reply {
            status: 0,
            head: String::new(),
            body: resp,
            complete: false,
        };
    };
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let mut body = resp[split + 4..].to_vec();
    let mut complete = true;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        (body, complete) = try_dechunk(&body);
    }
    Reply {
        status,
        head,
        body,
        complete,
    }
}

/// Decode a chunked body (panics on a truncated one).
pub fn dechunk(b: &[u8]) -> Vec<u8> {
    let (out, complete) = try_dechunk(b);
    assert!(complete, "truncated chunked body");
    out
}

/// Decode a chunked body as far as it goes; true if it reached the last chunk.
pub fn try_dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let Some(n) = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
        else {
            return (out, false);
        };
        if n == 0 {
            return (out, true);
        }
        let Some(chunk) = b.get(eol + 2..eol + 2 + n) else {
            out.extend_from_slice(&b[(eol + 2).min(b.len())..]);
            return (out, false);
        };
        out.extend_from_slice(chunk);
        b = b.get(eol + 4 + n..).unwrap_or_default();
    }
}
