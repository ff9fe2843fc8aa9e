//! Talking to a running daemon. `kiln daemon` writes the address of its API listener to
//! `$KILN_HOME/api` and removes it at shutdown; a command that finds the file, and a daemon
//! answering there with this repository's identity, sends its work to the daemon instead of
//! opening the store. The output is the same either way: the commands format the daemon's
//! answers exactly as they format the store's.

use anyhow::{Context, Result, anyhow, bail};
use kiln_wire::{ErrorView, NodeView};
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The file in the repository naming the running daemon's API (`http://ADDR:PORT`).
pub const API_FILE: &str = "api";

/// The running daemon's API on a Unix socket, for the repository owner's commands.
pub const SOCKET_FILE: &str = "api.sock";

/// The environment variable holding the token sent to a daemon reached over TCP.
pub const TOKEN_ENV: &str = "KILN_TOKEN";

/// A daemon's API, reachable over HTTP.
#[derive(Clone)]
pub struct Daemon {
    base: String,
    http: reqwest::blocking::Client,
    /// Whether requests carry a token.
    token: bool,
}

/// Query arguments, in order (`arg` may repeat).
pub type Query<'a> = [(&'a str, String)];

/// How a client reaches the daemon: over TCP with the token of `$KILN_TOKEN` (if set), or
/// over the repository's socket.
fn client(socket: Option<&Path>) -> Result<(reqwest::blocking::Client, bool)> {
    let mut b = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(None);
    let mut token = false;
    match socket {
        Some(path) => b = b.unix_socket(path),
        None => {
            if let Some(t) = std::env::var(TOKEN_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty())
            {
                let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.trim()))
                    .map_err(|_| anyhow!("{TOKEN_ENV} holds characters a token cannot have"))?;
                v.set_sensitive(true);
                let mut h = reqwest::header::HeaderMap::new();
                h.insert(reqwest::header::AUTHORIZATION, v);
                b = b.default_headers(h);
                token = true;
            }
        }
    }
    Ok((b.build().context("cannot set up the HTTP client")?, token))
}

impl Daemon {
    /// The daemon to use for the repository at `home`: the one named by `explicit`
    /// (`--node`/`$KILN_NODE`, which must answer), else the one `$KILN_HOME/api` names if it
    /// answers with this repository's identity, else none (open the store directly).
    pub fn find(home: &Path, explicit: Option<&str>) -> Result<Option<Daemon>> {
        if let Some(url) = explicit {
            let (http, token) = client(None)?;
            let d = Daemon {
                base: url.trim_end_matches('/').to_string(),
                http,
                token,
            };
            d.node()
                .with_context(|| format!("no kiln daemon answers at {url}"))?;
            return Ok(Some(d));
        }
        // The socket first: there the daemon takes us for the local administrator.
        let socket = home.join(SOCKET_FILE);
        if socket.exists() {
            let (http, _) = client(Some(&socket))?;
            let d = Daemon {
                base: "http://localhost".into(),
                http,
                token: false,
            };
            let key = crate::repo::identity(home)?;
            if d.node().is_ok_and(|n| n.peer_id == key.peer_id()) {
                return Ok(Some(d));
            }
        }
        let Ok(text) = std::fs::read_to_string(home.join(API_FILE)) else {
            return Ok(None);
        };
        let url = text.trim();
        if !url.starts_with("http://") {
            return Ok(None);
        }
        let (http, token) = client(None)?;
        let d = Daemon {
            base: url.trim_end_matches('/').to_string(),
            http,
            token,
        };
        // A file left by a daemon that was killed, or a port now used by another node:
        // open the repository directly.
        let Ok(node) = d.node() else {
            return Ok(None);
        };
        let key = crate::repo::identity(home)?;
        Ok((node.peer_id == key.peer_id()).then_some(d))
    }

    /// Whether requests carry a token (`$KILN_TOKEN`).
    pub fn has_token(&self) -> bool {
        self.token
    }

    /// `GET /api/kiln/v1/node`.
    pub fn node(&self) -> Result<NodeView> {
        self.get_json("/api/kiln/v1/node")
    }

    fn check(resp: reqwest::blocking::Response) -> Result<reqwest::blocking::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        match serde_json::from_str::<ErrorView>(&text) {
            Ok(e) => Err(anyhow!("{}", e.message)),
            Err(_) => Err(anyhow!(
                "daemon answered {status}: {}",
                text.lines().next().unwrap_or("")
            )),
        }
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<reqwest::blocking::Response> {
        let resp = req
            .send()
            .with_context(|| format!("cannot reach the kiln daemon at {}", self.base))?;
        Daemon::check(resp)
    }

    /// `GET` one of kiln's own JSON endpoints.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.http.get(format!("{}{path}", self.base)))?;
        resp.json()
            .with_context(|| format!("unexpected answer from {path}"))
    }

    /// `POST` to one of kiln's own JSON endpoints.
    pub fn post_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.http.post(format!("{}{path}", self.base)))?;
        resp.json()
            .with_context(|| format!("unexpected answer from {path}"))
    }

    /// `POST` a JSON body to one of kiln's own endpoints; the answer's JSON.
    pub fn post_json_body<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let resp = self.send(self.http.post(format!("{}{path}", self.base)).json(body))?;
        resp.json()
            .with_context(|| format!("unexpected answer from {path}"))
    }

    /// `POST` a JSON body to one of kiln's own endpoints; the answer's status and JSON.
    pub fn post_json_status<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(u16, T)> {
        let resp = self.send(self.http.post(format!("{}{path}", self.base)).json(body))?;
        let status = resp.status().as_u16();
        let v = resp
            .json()
            .with_context(|| format!("unexpected answer from {path}"))?;
        Ok((status, v))
    }

    /// `DELETE` one of kiln's own endpoints; the answer's JSON.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.http.delete(format!("{}{path}", self.base)))?;
        resp.json()
            .with_context(|| format!("unexpected answer from {path}"))
    }

    /// `GET` one of kiln's own endpoints; the answer body streams from the result.
    pub fn get(&self, path: &str) -> Result<reqwest::blocking::Response> {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }

    /// Send the CAR `car` (made by a [`CarFile`]) to `dag/import`, without pinning its root.
    pub fn import_car(&self, car: Box<dyn Read + Send>, hold: Option<&str>) -> Result<()> {
        let parts = vec![Part::File("blocks.car".into(), car)];
        let mut q = vec![("pin-roots", "false".to_string())];
        if let Some(owner) = hold {
            // Pinned for `owner` as it is imported, so no GC takes it before it is used.
            q = vec![
                ("pin-roots", "true".to_string()),
                ("pin-owner", owner.to_string()),
            ];
        }
        let text = self
            .rpc_multipart("dag/import", &q, Multipart::new(parts, Box::new(|_| {})))?
            .text()?;
        parse_ndjson::<serde_json::Value>(&text, "dag/import")?;
        Ok(())
    }

    /// A Kubo RPC call (`POST /api/v0/CMD?…`); the answer body streams from the result.
    pub fn rpc(&self, cmd: &str, query: &Query) -> Result<reqwest::blocking::Response> {
        self.send(
            self.http
                .post(format!("{}/api/v0/{cmd}", self.base))
                .query(query),
        )
    }

    /// A Kubo RPC call answered with one JSON value.
    pub fn rpc_json<T: DeserializeOwned>(&self, cmd: &str, query: &Query) -> Result<T> {
        self.rpc(cmd, query)?
            .json()
            .with_context(|| format!("unexpected answer from {cmd}"))
    }

    /// A Kubo RPC call answered with newline-delimited JSON.
    pub fn rpc_ndjson<T: DeserializeOwned>(&self, cmd: &str, query: &Query) -> Result<Vec<T>> {
        let text = self.rpc(cmd, query)?.text()?;
        parse_ndjson(&text, cmd)
    }

    /// A Kubo RPC call with a streamed `multipart/form-data` body.
    pub fn rpc_multipart(
        &self,
        cmd: &str,
        query: &Query,
        body: Multipart,
    ) -> Result<reqwest::blocking::Response> {
        let ctype = format!("multipart/form-data; boundary={}", body.boundary);
        self.send(
            self.http
                .post(format!("{}/api/v0/{cmd}", self.base))
                .query(query)
                .header(reqwest::header::CONTENT_TYPE, ctype)
                .body(reqwest::blocking::Body::new(body)),
        )
    }
}

/// Blocks written as the sections of a CARv1 body to a temporary file, each once; the
/// header naming the root is put in front by [`CarFile::finish`].
pub struct CarFile {
    out: std::io::BufWriter<std::fs::File>,
    seen: std::collections::HashSet<kiln_core::Cid>,
    buf: Vec<u8>,
}

impl CarFile {
    /// An empty CAR body in a temporary file.
    pub fn new() -> Result<CarFile> {
        let tmp = tempfile::tempfile().context("cannot create a temporary file")?;
        Ok(CarFile {
            out: std::io::BufWriter::with_capacity(1 << 20, tmp),
            seen: std::collections::HashSet::new(),
            buf: Vec::new(),
        })
    }

    /// The whole CAR, rooted at `root`, to read from the start.
    pub fn finish(self, root: &kiln_core::Cid) -> Result<Box<dyn Read + Send>> {
        use std::io::Seek;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("writing a temporary CAR")?;
        file.rewind().context("reading a temporary CAR")?;
        let header = kiln_core::car::encode_header(&[*root]);
        let mut head = Vec::with_capacity(header.len() + 4);
        kiln_core::pb::put_varint(&mut head, header.len() as u64);
        head.extend_from_slice(&header);
        Ok(Box::new(std::io::Cursor::new(head).chain(file)))
    }
}

impl kiln_core::BlockSink for CarFile {
    fn put(
        &mut self,
        cid: &kiln_core::Cid,
        data: &[u8],
        _links: &[kiln_core::Cid],
    ) -> kiln_core::Result<()> {
        use std::io::Write;
        if !self.seen.insert(*cid) {
            return Ok(());
        }
        let cb = cid.to_bytes();
        self.buf.clear();
        kiln_core::pb::put_varint(&mut self.buf, (cb.len() + data.len()) as u64);
        self.buf.extend_from_slice(&cb);
        let io = |e| kiln_core::Error::io("writing a temporary CAR", e);
        self.out.write_all(&self.buf).map_err(io)?;
        self.out.write_all(data).map_err(io)
    }
}

/// Server-sent events from `resp`, each parsed as JSON and handed to `each`, until the
/// stream ends or `each` says stop (returns false).
pub fn read_events<T: DeserializeOwned>(
    resp: reqwest::blocking::Response,
    mut each: impl FnMut(T) -> Result<bool>,
) -> Result<()> {
    use std::io::BufRead;
    let mut data = String::new();
    for line in std::io::BufReader::new(resp).lines() {
        let line = line.context("reading events from the daemon")?;
        if line.is_empty() {
            if !data.is_empty() {
                let v: T = serde_json::from_str(&data)
                    .with_context(|| format!("unexpected event from the daemon: {data}"))?;
                data.clear();
                if !each(v)? {
                    return Ok(());
                }
            }
            continue;
        }
        // `event:` and `id:` repeat what the data says; `:` lines keep the stream alive.
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    Ok(())
}

/// Newline-delimited JSON; a line with `Message` and `Type: "error"` is an error.
pub fn parse_ndjson<T: DeserializeOwned>(text: &str, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("unexpected answer from {what}"))?;
        if v.get("Type").and_then(|t| t.as_str()) == Some("error") {
            bail!(
                "{}",
                v.get("Message").and_then(|m| m.as_str()).unwrap_or("error")
            );
        }
        out.push(
            serde_json::from_value(v).with_context(|| format!("unexpected answer from {what}"))?,
        );
    }
    Ok(out)
}

/// One part of a multipart body.
pub enum Part {
    /// A directory entry (`application/x-directory`).
    Directory(String),
    /// A symlink (`application/symlink`) and its target.
    Symlink(String, Vec<u8>),
    /// A file's bytes, read as the body is sent.
    File(String, Box<dyn Read + Send>),
}

/// A `multipart/form-data` body produced part by part as it is read, so files stream from
/// disk to the daemon without being held in memory.
pub struct Multipart {
    boundary: String,
    parts: std::collections::VecDeque<Part>,
    head: std::io::Cursor<Vec<u8>>,
    current: Option<Box<dyn Read + Send>>,
    finished: bool,
    /// Called with the number of file bytes sent so far.
    progress: Box<dyn FnMut(u64) + Send>,
    sent: u64,
}

impl Multipart {
    /// A body of `parts`, in order.
    pub fn new(parts: Vec<Part>, progress: Box<dyn FnMut(u64) + Send>) -> Multipart {
        // A random boundary: file bytes cannot be made to contain it.
        let mut rnd = [0u8; 16];
        if getrandom::fill(&mut rnd).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            rnd = nanos.to_le_bytes();
        }
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        Multipart {
            boundary: format!("kiln-{hex}"),
            parts: parts.into(),
            head: std::io::Cursor::new(Vec::new()),
            current: None,
            finished: false,
            progress,
            sent: 0,
        }
    }

    fn header(&self, name: &str, ctype: &str) -> Vec<u8> {
        let escaped = percent_encoding::utf8_percent_encode(name, NAME_ESCAPES);
        format!(
            "--{}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{escaped}\"\r\nContent-Type: {ctype}\r\n\r\n",
            self.boundary
        )
        .into_bytes()
    }

    /// Queue the next part's header (and small body); false when none is left.
    fn advance(&mut self) -> bool {
        let Some(part) = self.parts.pop_front() else {
            if self.finished {
                return false;
            }
            self.finished = true;
            self.head = std::io::Cursor::new(format!("--{}--\r\n", self.boundary).into_bytes());
            return true;
        };
        let mut head = Vec::new();
        match part {
            Part::Directory(name) => {
                head.extend(self.header(&name, "application/x-directory"));
                head.extend_from_slice(b"\r\n");
            }
            Part::Symlink(name, target) => {
                head.extend(self.header(&name, "application/symlink"));
                head.extend(target);
                head.extend_from_slice(b"\r\n");
            }
            Part::File(name, reader) => {
                head.extend(self.header(&name, "application/octet-stream"));
                self.current = Some(reader);
            }
        }
        self.head = std::io::Cursor::new(head);
        true
    }
}

/// Bytes escaped in a multipart file name: controls, `"`, `%`, and non-ASCII.
const NAME_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'"').add(b'%');

impl Read for Multipart {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.head.read(out)?;
            if n > 0 {
                return Ok(n);
            }
            if let Some(r) = self.current.as_mut() {
                let n = r.read(out)?;
                if n > 0 {
                    self.sent += n as u64;
                    (self.progress)(self.sent);
                    return Ok(n);
                }
                self.current = None;
                self.head = std::io::Cursor::new(b"\r\n".to_vec());
                continue;
            }
            if !self.advance() {
                return Ok(0);
            }
        }
    }
}

/// The daemon's blocks as a [`kiln_core::BlockSource`], each one checked against its CID,
/// so kiln-core's readers (and `get`'s safety checks) work on them unchanged.
pub struct Blocks(pub Daemon);

impl kiln_core::BlockSource for Blocks {
    fn get(&self, cid: &kiln_core::Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        if let Some(d) = kiln_core::cids::identity_data(cid) {
            return Ok(Some(d.to_vec()));
        }
        let io = |e: String| kiln_core::Error::Io {
            context: format!("fetching block {cid} from the daemon"),
            source: std::io::Error::other(e),
        };
        let d = &self.0;
        let resp = d
            .http
            .get(format!("{}/api/kiln/v1/blocks/{cid}", d.base))
            .send()
            .map_err(|e| io(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = Daemon::check(resp).map_err(|e| io(e.to_string()))?;
        let data = resp.bytes().map_err(|e| io(e.to_string()))?.to_vec();
        kiln_core::cids::verify(cid, &data)?;
        Ok(Some(data))
    }
}
