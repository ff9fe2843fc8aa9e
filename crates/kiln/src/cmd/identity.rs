//! `kiln identity new|show|export|import`: the user's own ed25519 identity, a `did:key`,
//! kept apart from any node's key (not in a repository): `$KILN_IDENTITY` if set, else
//! `$XDG_CONFIG_HOME/kiln/identity.key`, else `~/.config/kiln/identity.key`; the file is
//! mode 0600 in a directory of mode 0700. Exported and imported as PKCS#8 PEM, the form
//! `openssl` and most tools read and write.

use crate::cli::IdentityCommand;
use anyhow::{Context, Result, bail};
use kiln_id::NodeKey;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The largest identity file read for an import.
const MAX_IMPORT: u64 = 64 << 10;

/// The user's kiln configuration directory: `$XDG_CONFIG_HOME/kiln`, else
/// `~/.config/kiln`.
pub fn config_dir() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => bail!(
                "cannot tell where your configuration lives: set HOME or XDG_CONFIG_HOME (or KILN_IDENTITY for the identity)"
            ),
        },
    };
    Ok(config.join("kiln"))
}

/// Where the user's identity is kept.
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KILN_IDENTITY").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    Ok(config_dir()?.join("identity.key"))
}

/// The user's identity, if there is one.
pub fn load() -> Result<Option<(NodeKey, PathBuf)>> {
    let path = path()?;
    match NodeKey::load(&path) {
        Ok(k) => Ok(Some((k, path))),
        Err(kiln_id::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The user's identity, or a clear error saying how to make one.
pub(crate) fn existing() -> Result<(NodeKey, PathBuf)> {
    match load()? {
        Some(found) => Ok(found),
        None => bail!(
            "you have no identity yet ({} does not exist): `kiln identity new` creates one, `kiln identity import FILE` brings one",
            path()?.display()
        ),
    }
}

/// Create the directory that holds the identity, private to the user.
pub(crate) fn make_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Write `bytes` to `path`, readable by the user alone (mode 0600, in a 0700 directory),
/// atomically: written in full and synced beside it, then renamed over it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    make_dir(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Store `key` as the identity at `path`: a new file, or (`force`) in place of the one there.
fn store(key: &NodeKey, path: &Path, force: bool) -> Result<()> {
    make_dir(path)?;
    if force {
        key.replace(path)?;
    } else {
        key.create(path)?;
    }
    Ok(())
}

/// Refuse to overwrite an identity unless asked: it cannot be recovered once replaced.
fn refuse_existing(force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some((old, path)) = load()? {
        bail!(
            "an identity already exists in {}: {} (`kiln identity export -o FILE` saves it; --force replaces it, and it is lost unless saved)",
            path.display(),
            old.did()
        );
    }
    Ok(())
}

pub fn run(cmd: IdentityCommand) -> Result<ExitCode> {
    match cmd {
        IdentityCommand::New { force } => {
            refuse_existing(force)?;
            let key = NodeKey::generate()?;
            let path = path()?;
            store(&key, &path, force)?;
            eprintln!("Created your identity in {}", path.display());
            println!("{}", key.did());
        }
        IdentityCommand::Show { json } => {
            let (key, path) = existing()?;
            if json {
                let v = serde_json::json!({
                    "did": key.did(),
                    "public_key": hex(key.public_key().as_bytes()),
                    "path": path.display().to_string(),
                });
                println!("{v}");
            } else {
                println!("{}", key.did());
            }
        }
        IdentityCommand::Export { output } => {
            let (key, _) = existing()?;
            let pem = key.to_pkcs8_pem()?;
            match output {
                Some(o) if o.as_os_str() != "-" => {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&o)
                        .with_context(|| format!("cannot create {}", o.display()))?;
                    f.write_all(pem.as_bytes())
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("writing {}", o.display()))?;
                    eprintln!(
                        "Exported {} to {} (the secret key: keep it private)",
                        key.did(),
                        o.display()
                    );
                }
                _ => {
                    let mut out = std::io::stdout().lock();
                    if out.is_terminal() {
                        bail!(
                            "refusing to print a secret key to the terminal: use -o FILE, or redirect the output"
                        );
                    }
                    out.write_all(pem.as_bytes())?;
                    out.flush()?;
                }
            }
        }
        IdentityCommand::Import { file, force } => {
            let text = read_limited(&file)?;
            let key = NodeKey::from_pkcs8_pem(&text).with_context(|| {
                format!(
                    "{} is not an ed25519 private key in PKCS#8 PEM (as `kiln identity export` and `openssl genpkey -algorithm ed25519` write)",
                    shown(&file)
                )
            })?;
            if let Some((old, _)) = load()?
                && old.did() == key.did()
            {
                eprintln!("That is already your identity");
                println!("{}", key.did());
                return Ok(ExitCode::SUCCESS);
            }
            refuse_existing(force)?;
            let path = path()?;
            store(&key, &path, force)?;
            eprintln!("Imported your identity into {}", path.display());
            println!("{}", key.did());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn shown(file: &Path) -> String {
    if file.as_os_str() == "-" {
        "standard input".into()
    } else {
        file.display().to_string()
    }
}

/// The file's text (or standard input's, for `-`), refusing anything larger than a key
/// file can be.
fn read_limited(file: &Path) -> Result<String> {
    let input: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        )
    };
    let mut bytes = Vec::new();
    input
        .take(MAX_IMPORT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", shown(file)))?;
    if bytes.len() as u64 > MAX_IMPORT {
        bail!("{} is too large to be a key file", shown(file));
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not a PEM text file", shown(file)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
