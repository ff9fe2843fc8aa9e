//! The dag-pb codec (0x70): `PBNode { Links = 2, Data = 1 }`, `PBLink { Hash = 1, Name = 2, Tsize = 3 }`.
//!
//! Encoding is canonical and byte-identical to Go and JS: links first, then data;
//! a link always writes `Name` (even empty) and `Tsize`.

use crate::pb::{self, Field, Fields};
use crate::{Cid, Error, Result};

/// A link of a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    /// The target.
    pub cid: Cid,
    /// The name (empty for file chunks).
    pub name: String,
    /// Cumulative size of the target DAG.
    pub tsize: u64,
}

/// A dag-pb node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PbNode {
    /// Links in order.
    pub links: Vec<PbLink>,
    /// The payload (UnixFS Data for UnixFS nodes).
    pub data: Option<Vec<u8>>,
}

fn link_body_len(cid_len: usize, name_len: usize, tsize: u64) -> usize {
    pb::bytes_field_len(1, cid_len) + pb::bytes_field_len(2, name_len) + 1 + pb::varint_len(tsize)
}

/// Encoded size of one link as it appears in a node (including its field header).
pub fn encoded_link_len(cid: &Cid, name: &str, tsize: u64) -> usize {
    pb::bytes_field_len(2, link_body_len(cid.encoded_len(), name.len(), tsize))
}

impl PbNode {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.links.len() * 48 + self.data.as_ref().map_or(0, |d| d.len() + 8),
        );
        let mut cid_buf = Vec::with_capacity(40);
        for l in &self.links {
            cid_buf.clear();
            // Writing into a Vec cannot fail.
            let _ = l.cid.write_bytes(&mut cid_buf);
            pb::put_varint(&mut out, (2 << 3) | 2);
            pb::put_varint(
                &mut out,
                link_body_len(cid_buf.len(), l.name.len(), l.tsize) as u64,
            );
            pb::put_bytes_field(&mut out, 1, &cid_buf);
            pb::put_bytes_field(&mut out, 2, l.name.as_bytes());
            pb::put_varint_field(&mut out, 3, l.tsize);
        }
        if let Some(d) = &self.data {
            pb::put_bytes_field(&mut out, 1, d);
        }
        out
    }

    /// Decode; `cid` only improves error messages.
    pub fn decode(bytes: &[u8], cid: Option<Cid>) -> Result<PbNode> {
        let bad = |r: String| Error::malformed("dag-pb", cid, r);
        let mut node = PbNode::default();
        let mut seen_data = false;
        for f in Fields::new(bytes) {
            match f.map_err(bad)? {
                (2, Field::Bytes(lb)) => {
                    if seen_data {
                        return Err(bad("link after data".into()));
                    }
                    node.links.push(decode_link(lb).map_err(bad)?);
                }
                (1, Field::Bytes(d)) => {
                    if seen_data {
                        return Err(bad("duplicate data".into()));
                    }
                    seen_data = true;
                    node.data = Some(d.to_vec());
                }
                (n, _) => return Err(bad(format!("unexpected field {n}"))),
            }
        }
        Ok(node)
    }
}

fn decode_link(bytes: &[u8]) -> std::result::Result<PbLink, String> {
    let mut cid = None;
    let mut name = None;
    let mut tsize = None;
    for f in Fields::new(bytes) {
        match f? {
            (1, Field::Bytes(h)) if cid.is_none() => {
                let c = Cid::read_bytes(h).map_err(|e| format!("bad link hash: {e}"))?;
                if c.encoded_len() != h.len() {
                    return Err("trailing bytes after link CID".into());
                }
                cid = Some(c);
            }
            (2, Field::Bytes(n)) if name.is_none() => {
                name = Some(String::from_utf8(n.to_vec()).map_err(|_| "link name is not UTF-8")?);
            }
            (3, Field::Varint(t)) if tsize.is_none() => tsize = Some(t),
            (n, _) => return Err(format!("unexpected or repeated link field {n}")),
        }
    }
    Ok(PbLink {
        cid: cid.ok_or("link without hash")?,
        name: name.unwrap_or_default(),
        tsize: tsize.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let c: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
            .parse()
            .unwrap();
        let n = PbNode {
            links: vec![PbLink {
                cid: c,
                name: "a b".into(),
                tsize: 4,
            }],
            data: Some(vec![8, 1]),
        };
        let b = n.encode();
        assert_eq!(b.len(), encoded_link_len(&c, "a b", 4) + 4);
        assert_eq!(PbNode::decode(&b, None).unwrap(), n);
        assert!(PbNode::decode(&[0xff], None).is_err());
    }
}
