//! Directories (flat or HAMT-sharded) and symlinks.

use super::hamt;
use super::{HamtRule, ImportOptions, Imported};
use crate::cids::{self, DAG_PB};
use crate::dag_pb::{PbLink, PbNode, encoded_link_len};
use crate::unixfs::{DataType, UnixfsData};
use crate::{BlockSink, Cid, Error, Result, names};

/// One named entry of a directory being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Entry name (one path segment).
    pub name: String,
    /// What it points to.
    pub cid: Cid,
    /// Cumulative size of the target.
    pub tsize: u64,
}

impl DirEntry {
    /// An entry from an imported node.
    pub fn new(name: impl Into<String>, node: &Imported) -> Self {
        DirEntry {
            name: name.into(),
            cid: node.cid,
            tsize: node.tsize,
        }
    }
}

/// Store a node and describe it.
pub(crate) fn put_node(
    sink: &mut dyn BlockSink,
    node: &PbNode,
    opts: &ImportOptions,
    size: u64,
) -> Result<Imported> {
    let bytes = node.encode();
    if bytes.len() > names::MAX_BLOCK_BYTES {
        return Err(Error::TooLarge {
            what: "a UnixFS node",
            size: bytes.len(),
            limit: names::MAX_BLOCK_BYTES,
        });
    }
    let cid = cids::cid_of(opts.cid_version, DAG_PB, &bytes);
    let links: Vec<Cid> = node.links.iter().map(|l| l.cid).collect();
    sink.put(&cid, &bytes, &links)?;
    let tsize = bytes.len() as u64 + node.links.iter().map(|l| l.tsize).sum::<u64>();
    Ok(Imported { cid, tsize, size })
}

/// Build a directory from its entries: flat while small, a HAMT shard once the
/// profile's size rule says it is too big.
pub fn build_directory(
    sink: &mut dyn BlockSink,
    mut entries: Vec<DirEntry>,
    opts: &ImportOptions,
) -> Result<Imported> {
    for e in &entries {
        names::check(&e.name)?;
    }
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Options(format!(
            "duplicate directory entry {:?}",
            w[0].name
        )));
    }
    let shard = match opts.hamt_rule {
        HamtRule::LinksBytes => {
            let estimate: usize = entries
                .iter()
                .map(|e| e.name.len() + e.cid.encoded_len())
                .sum();
            estimate > opts.hamt_threshold
        }
        HamtRule::BlockBytes => {
            // Links, then the Data field `0a 02 08 01`.
            let size: usize = entries
                .iter()
                .map(|e| encoded_link_len(&e.cid, &e.name, e.tsize))
                .sum::<usize>()
                + 4;
            size > opts.hamt_threshold
        }
    };
    if shard {
        return hamt::build(sink, entries, opts);
    }
    let node = PbNode {
        links: entries
            .into_iter()
            .map(|e| PbLink {
                cid: e.cid,
                name: e.name,
                tsize: e.tsize,
            })
            .collect(),
        data: Some(UnixfsData::new(DataType::Directory).encode()),
    };
    put_node(sink, &node, opts, 0)
}

/// Store a symlink node pointing at `target`.
pub fn symlink(sink: &mut dyn BlockSink, target: &[u8], opts: &ImportOptions) -> Result<Imported> {
    let mut u = UnixfsData::new(DataType::Symlink);
    u.data = Some(target.to_vec());
    put_node(
        sink,
        &PbNode {
            links: Vec::new(),
            data: Some(u.encode()),
        },
        opts,
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NullSink;
    use crate::import::Profile;

    #[test]
    fn empty_directory() {
        let v0 = build_directory(
            &mut NullSink,
            vec![],
            &ImportOptions::from_profile(Profile::KuboV0),
        )
        .unwrap();
        assert_eq!(
            v0.cid.to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        let v1 = build_directory(
            &mut NullSink,
            vec![],
            &ImportOptions::from_profile(Profile::V1_2025),
        )
        .unwrap();
        assert_eq!(
            v1.cid.to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
    }
}
