//! Directory entry names and the limits on what kiln makes and accepts.
//!
//! One rule decides whether an entry name is safe — `kiln add` and the RPC `add` refuse
//! what breaks it, and `kiln get`, the gateway's tar, the web UI and builds refuse to write
//! or link what breaks it in content from elsewhere — so what kiln stores it can give back.

use crate::{Error, Result};

/// The longest entry name kiln makes (bytes): Linux's `NAME_MAX`, so every name `kiln add`
/// stores can be written back to disk by `kiln get`.
pub const MAX_NAME_BYTES: usize = 255;

/// The largest block kiln takes from outside (`block put`) or makes itself (`add`); a CAR
/// section (CID + block) may be up to [`crate::car::MAX_SECTION`].
pub const MAX_BLOCK_BYTES: usize = 4 << 20;

/// How deep directories may nest in what kiln adds, writes out or archives.
pub const MAX_DEPTH: usize = 1024;

/// True if `name` is safe as one path segment on disk, in a tar archive or in a URL path:
/// not empty, not `.` or `..`, without `/` or NUL.
pub fn is_safe(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Check a name for a new directory entry: [`is_safe`] and at most [`MAX_NAME_BYTES`].
pub fn check(name: &str) -> Result<()> {
    let reason = if !is_safe(name) {
        "is not a safe entry name (empty, \".\", \"..\", or holding '/' or NUL)"
    } else if name.len() > MAX_NAME_BYTES {
        "is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::BadName {
        name: shown(name),
        reason,
    })
}

/// A name as it appears in an error: whole when short, else its start and its length.
pub fn shown(name: &str) -> String {
    const KEEP: usize = 48;
    if name.len() <= KEEP + 16 {
        return format!("{name:?}");
    }
    let mut end = KEEP;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &name[..end], name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b", "\0"] {
            assert!(!is_safe(bad), "{bad:?}");
            assert!(check(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "...", ".hidden", "a b", "é", "a\\b", &"x".repeat(255)] {
            assert!(is_safe(good), "{good:?}");
            check(good).unwrap();
        }
        let long = "y".repeat(256);
        let e = check(&long).unwrap_err().to_string();
        assert!(
            e.contains("longer than 255") && e.contains("(256 bytes)"),
            "{e}"
        );
        let huge = "z".repeat(9_000_000);
        assert!(check(&huge).unwrap_err().to_string().len() < 200);
    }
}
