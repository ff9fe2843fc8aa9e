//! `kiln add` through the daemon: the same walk and checks as a local add
//! (`crate::cmd::add`), the files streamed to the Kubo RPC's `add` as multipart parts (the
//! daemon chunks and hashes them), its answer printed in the local add's order.

use crate::cli::AddArgs;
use crate::cmd::add::{Visit, base_name, walk};
use crate::remote::{Daemon, Multipart, Part};
use anyhow::{Result, bail};
use indicatif::ProgressBar;
use std::fs;
use std::io::Write;
use std::path::Path;

/// What `add` sends to a daemon: the parts, and each printed line's wire name.
struct Plan {
    parts: Vec<Part>,
    /// (name on the wire, name printed; `None` for standard input, printed as its CID), in
    /// the order the local add prints them.
    lines: Vec<(String, Option<String>)>,
    /// The input being walked: its printed name and its name on the wire.
    top: (String, String),
}

impl Plan {
    /// The wire name of a printed name under the current input.
    fn wire(&self, display: &str) -> String {
        let (shown, wire) = &self.top;
        match display.strip_prefix(shown.as_str()) {
            Some(rest) if !shown.is_empty() => format!("{wire}{rest}"),
            _ if shown.is_empty() && !display.is_empty() => format!("{wire}/{display}"),
            _ => wire.clone(),
        }
    }
}

/// A file opened when the body reaches it, so a large tree never holds many descriptors.
struct LazyFile {
    path: std::path::PathBuf,
    file: Option<fs::File>,
}

impl std::io::Read for LazyFile {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            let f = fs::File::open(&self.path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot open {}: {e}", self.path.display()),
                )
            })?;
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => f.read(out),
            None => Ok(0),
        }
    }
}

impl Visit for Plan {
    type Node = ();

    fn file(&mut self, path: &Path, _: &fs::Metadata, display: &str) -> Result<()> {
        let wire = self.wire(display);
        self.parts.push(Part::File(
            wire.clone(),
            Box::new(LazyFile {
                path: path.to_path_buf(),
                file: None,
            }),
        ));
        self.lines.push((wire, Some(display.to_string())));
        Ok(())
    }

    fn symlink(&mut self, target: &[u8], display: &str) -> Result<()> {
        let wire = self.wire(display);
        self.parts
            .push(Part::Symlink(wire.clone(), target.to_vec()));
        self.lines.push((wire, Some(display.to_string())));
        Ok(())
    }

    fn directory(&mut self, _: Vec<(String, ())>, display: &str) -> Result<()> {
        let wire = self.wire(display);
        self.parts.push(Part::Directory(wire.clone()));
        self.lines.push((wire, Some(display.to_string())));
        Ok(())
    }
}

/// One line of `/api/v0/add`'s answer.
#[derive(serde::Deserialize)]
struct Added {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Hash")]
    hash: String,
}

/// `add` through the daemon: the same walk and checks as a local add, the bytes streamed
/// to the daemon as multipart parts, the answer printed in the local add's order.
pub(super) fn add(d: &Daemon, args: &AddArgs, bar: ProgressBar) -> Result<()> {
    let mut plan = Plan {
        parts: Vec::new(),
        lines: Vec::new(),
        top: (String::new(), String::new()),
    };
    // Top-level names only matter inside a wrapping directory; elsewhere each input gets
    // its own wire name so that two inputs may share a base name, as they may locally.
    let mut roots = Vec::new();
    for (i, p) in args.paths.iter().enumerate() {
        if p.as_os_str() == "-" {
            let wire = if args.wrap_with_directory {
                String::new()
            } else {
                format!("input-{i}")
            };
            plan.parts
                .push(Part::File(wire.clone(), Box::new(std::io::stdin())));
            if !args.wrap_with_directory {
                plan.lines.push((wire.clone(), None));
            }
            roots.push(wire);
            continue;
        }
        let name = base_name(p)?;
        let wire = if args.wrap_with_directory {
            if name.is_empty() {
                bail!("{}: cannot wrap an input without a name", p.display());
            }
            name.clone()
        } else {
            format!("input-{i}")
        };
        plan.top = (name.clone(), wire.clone());
        walk(&mut plan, args, p, &name)?;
        roots.push(wire);
    }
    let mut q = vec![
        ("pin", args.pin.clone()),
        ("wrap-with-directory", args.wrap_with_directory.to_string()),
    ];
    if let Some(v) = args.cid_version {
        q.push(("cid-version", v.to_string()));
    }
    if let Some(r) = &args.raw_leaves {
        q.push(("raw-leaves", r.clone()));
    }
    if let Some(c) = &args.chunker {
        q.push(("chunker", c.clone()));
    }
    if let Some(p) = &args.profile {
        q.push(("profile", p.clone()));
    }
    let progress = bar.clone();
    let body = Multipart::new(plan.parts, Box::new(move |n| progress.set_position(n)));
    let text = d.rpc_multipart("add", &q, body)?.text()?;
    bar.finish_and_clear();
    let answer: Vec<Added> = crate::remote::parse_ndjson(&text, "add")?;
    // Looked up once per printed line: a map, so a tree of many entries costs linear time.
    let by_name: std::collections::HashMap<&str, &str> = answer
        .iter()
        .map(|a| (a.name.as_str(), a.hash.as_str()))
        .collect();
    let cid_of = |wire: &str| -> Result<String> {
        by_name
            .get(wire)
            .map(|h| h.to_string())
            .ok_or_else(|| anyhow::anyhow!("the daemon did not report {wire:?}"))
    };
    let mut out = std::io::stdout().lock();
    if !args.quieter {
        for (wire, display) in &plan.lines {
            let cid = cid_of(wire)?;
            let display = display.clone().unwrap_or_else(|| cid.clone());
            if args.quiet {
                writeln!(out, "{cid}")?;
            } else if display.is_empty() {
                writeln!(out, "added {cid}")?;
            } else {
                writeln!(out, "added {cid} {display}")?;
            }
        }
    }
    let last = if args.wrap_with_directory {
        Some(cid_of("")?)
    } else {
        roots.last().map(|w| cid_of(w)).transpose()?
    };
    if let Some(last) = last {
        if args.wrap_with_directory && !args.quieter {
            if args.quiet {
                writeln!(out, "{last}")?;
            } else {
                writeln!(out, "added {last}")?;
            }
        } else if args.quieter {
            writeln!(out, "{last}")?;
        }
    }
    out.flush()?;
    Ok(())
}
