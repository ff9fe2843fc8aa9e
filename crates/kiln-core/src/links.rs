//! The links of a block, by codec: what GC, pinning and DAG export follow.

use crate::dag_pb::PbNode;
use crate::{Cid, Error, Result, cids};
use ipld_core::ipld::Ipld;

/// The CIDs a block links to, in order. Raw blocks have none; dag-pb and dag-cbor are
/// decoded; other codecs are refused.
pub fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>> {
    match cid.codec() {
        cids::RAW => Ok(Vec::new()),
        cids::DAG_PB => Ok(PbNode::decode(data, Some(*cid))?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        cids::DAG_CBOR => {
            let v: Ipld = serde_ipld_dagcbor::from_slice(data)
                .map_err(|e| Error::malformed("dag-cbor", Some(*cid), e.to_string()))?;
            let mut out = Vec::new();
            collect_ipld_links(&v, &mut out);
            Ok(out)
        }
        code => Err(Error::Unsupported {
            what: "codec",
            code,
        }),
    }
}

fn collect_ipld_links(v: &Ipld, out: &mut Vec<Cid>) {
    match v {
        Ipld::Link(c) => out.push(*c),
        Ipld::List(l) => l.iter().for_each(|x| collect_ipld_links(x, out)),
        Ipld::Map(m) => m.values().for_each(|x| collect_ipld_links(x, out)),
        _ => {}
    }
}
