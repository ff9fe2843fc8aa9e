//! Content CIDs of source files and directories: `kiln add -r --hidden` with the default
//! import options, except that executable files record the mode `0o755` (the convention of
//! [`crate::content`]), computed without storing anything (or storing the blocks in a sink).

use crate::error::{Error, Result};
use kiln_core::import::{self, DirEntry, ImportOptions, Imported, Profile, ReaderSource};
use kiln_core::{BlockSink, Cid, NullSink};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The import options source inputs are hashed with: `kiln add`'s default profile
/// (`unixfs-v1-2025`).
pub fn options() -> ImportOptions {
    ImportOptions::from_profile(Profile::V1_2025)
}

/// The CID of the file, symlink or directory at `path` (directories include hidden entries;
/// an executable file records the mode `0o755`, see [`crate::content`]; no other mode and no
/// times are recorded). Blocks go to `sink`.
pub fn import_path(
    sink: &mut dyn BlockSink,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Imported> {
    import_at_depth(sink, path, opts, 0)
}

fn import_at_depth(
    sink: &mut dyn BlockSink,
    path: &Path,
    opts: &ImportOptions,
    depth: usize,
) -> Result<Imported> {
    let io_err = |source: io::Error| Error::Import {
        host: path.to_path_buf(),
        source: kiln_core::Error::io("reading the source tree", source),
    };
    let core_err = |source| Error::Import {
        host: path.to_path_buf(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(io_err)?;
        import::symlink(sink, target.as_os_str().as_bytes(), opts).map_err(core_err)
    } else if ft.is_dir() {
        let mut children = fs::read_dir(path)
            .and_then(|rd| rd.collect::<io::Result<Vec<_>>>())
            .map_err(io_err)?;
        children.sort_by_key(|c| c.file_name());
        let mut entries = Vec::with_capacity(children.len());
        for c in children {
            let name = c.file_name();
            let Some(name) = name.to_str() else {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {name:?} is not valid UTF-8"),
                )));
            };
            if depth >= crate::content::MAX_DEPTH {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("more than {} directories deep", crate::content::MAX_DEPTH),
                )));
            }
            let node = import_at_depth(sink, &c.path(), opts, depth + 1)?;
            entries.push(DirEntry::new(name, &node));
        }
        import::build_directory(sink, entries, opts).map_err(core_err)
    } else if ft.is_file() {
        let mut f = fs::File::open(path).map_err(io_err)?;
        let mode = crate::content::recorded_mode(meta.permissions().mode());
        import::import_chunks_with_mode(sink, &mut ReaderSource(&mut f), opts, mode, &mut |_| {})
            .map_err(core_err)
    } else {
        Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "only files, directories and symlinks can be build inputs",
        )))
    }
}

/// The CID of the file, symlink or directory at `path`, storing nothing.
pub fn hash_path(path: &Path) -> Result<Cid> {
    Ok(import_path(&mut NullSink, path, &options())?.cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_import_bytes_and_location_free() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            fs::create_dir_all(d.join("t/sub")).unwrap();
            fs::write(d.join("t/sub/x"), b"hello").unwrap();
            fs::write(d.join("t/.hidden"), b"h").unwrap();
        }
        let f = hash_path(&a.path().join("t/sub/x")).unwrap();
        let want = import::import_bytes(&mut NullSink, b"hello", &options()).unwrap();
        assert_eq!(f, want.cid);
        let ta = hash_path(&a.path().join("t")).unwrap();
        assert_eq!(ta, hash_path(&b.path().join("t")).unwrap());
        fs::write(b.path().join("t/.hidden"), b"H").unwrap();
        assert_ne!(ta, hash_path(&b.path().join("t")).unwrap());
    }
}
