//! CAR files: write CARv1, read CARv1 and CARv2, verifying every block's hash.

use crate::pb::{put_varint, varint_len};
use crate::{BlockSource, Cid, Error, Result, cids, links};
use ipld_core::ipld::Ipld;
use std::collections::HashSet;
use std::io::{Read, Write};

/// The CARv2 pragma.
pub const V2_PRAGMA: [u8; 11] = [
    0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02,
];
/// Largest header accepted.
pub const MAX_HEADER: u64 = 1 << 20;
/// Largest section (CID + block) accepted.
pub const MAX_SECTION: u64 = 8 << 20;
/// Most roots a CAR header may list (each becomes a pin on import).
pub const MAX_ROOTS: usize = 1000;

/// Encode the dag-cbor CARv1 header `{roots: [...], version: 1}`.
pub fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut h = Vec::with_capacity(16 + roots.len() * 40);
    h.push(0xa2); // map(2), keys in dag-cbor order (length first)
    h.push(0x65);
    h.extend_from_slice(b"roots");
    cbor_head(&mut h, 4, roots.len() as u64);
    for r in roots {
        let b = r.to_bytes();
        h.extend_from_slice(&[0xd8, 0x2a]); // tag 42
        cbor_head(&mut h, 2, b.len() as u64 + 1);
        h.push(0x00);
        h.extend_from_slice(&b);
    }
    h.push(0x67);
    h.extend_from_slice(b"version");
    h.push(0x01);
    h
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Writes a CARv1 stream.
pub struct CarWriter<W: Write> {
    w: W,
    buf: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Write the header.
    pub fn new(mut w: W, roots: &[Cid]) -> Result<Self> {
        let h = encode_header(roots);
        let mut buf = Vec::with_capacity(h.len() + 10);
        put_varint(&mut buf, h.len() as u64);
        buf.extend_from_slice(&h);
        w.write_all(&buf).map_err(|e| Error::io("writing CAR", e))?;
        Ok(CarWriter { w, buf })
    }

    /// Write one block section.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.buf.clear();
        let cb = cid.to_bytes();
        put_varint(&mut self.buf, (cb.len() + data.len()) as u64);
        self.buf.extend_from_slice(&cb);
        self.w
            .write_all(&self.buf)
            .map_err(|e| Error::io("writing CAR", e))?;
        self.w
            .write_all(data)
            .map_err(|e| Error::io("writing CAR", e))
    }

    /// Flush and return the writer.
    pub fn finish(mut self) -> Result<W> {
        self.w.flush().map_err(|e| Error::io("writing CAR", e))?;
        Ok(self.w)
    }
}

/// Export the DAG under `root` as CARv1: depth-first, each block once, identity
/// blocks left out. Returns the number of blocks written.
pub fn export_dag(src: &dyn BlockSource, root: &Cid, w: impl Write) -> Result<u64> {
    let mut car = CarWriter::new(w, &[*root])?;
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut n = 0;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = src.get(&cid)?.ok_or(Error::NotFound(cid))?;
        let ls = links::links_of(&cid, &data)?;
        if cids::identity_data(&cid).is_none() {
            car.write_block(&cid, &data)?;
            n += 1;
        }
        stack.extend(ls.into_iter().rev());
    }
    car.finish()?;
    Ok(n)
}

/// Reads a CARv1 or CARv2 stream block by block; every block is hash-checked.
pub struct CarReader<R: Read> {
    r: R,
    roots: Vec<Cid>,
    version: u64,
    /// Bytes of the v1 payload left (CARv2 bounds it), or None for "to EOF".
    remaining: Option<u64>,
    offset: u64,
}

fn read_exact_or(r: &mut (impl Read + ?Sized), buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Car(format!("truncated {what}"))
        } else {
            Error::io("reading CAR", e)
        }
    })
}

/// Read a varint; `Ok(None)` on a clean EOF before its first byte.
fn read_varint(r: &mut (impl Read + ?Sized)) -> Result<Option<(u64, u64)>> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        match r.read(&mut b) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(Error::Car("truncated varint".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading CAR", e)),
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Err(Error::Car("varint too long".into()))
}

fn parse_v1_header(bytes: &[u8]) -> Result<(u64, Vec<Cid>)> {
    let v: Ipld = serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| Error::Car(format!("bad header: {e}")))?;
    let Ipld::Map(m) = v else {
        return Err(Error::Car("header is not a map".into()));
    };
    let version = match m.get("version") {
        Some(Ipld::Integer(i)) => {
            u64::try_from(*i).map_err(|_| Error::Car("bad version".into()))?
        }
        _ => return Err(Error::Car("header has no version".into())),
    };
    let roots = match m.get("roots") {
        Some(Ipld::List(l)) if l.len() > MAX_ROOTS => {
            return Err(Error::Car(format!(
                "header lists {} roots; at most {MAX_ROOTS} are accepted",
                l.len()
            )));
        }
        Some(Ipld::List(l)) => l
            .iter()
            .map(|x| match x {
                Ipld::Link(c) => Ok(*c),
                _ => Err(Error::Car("a root is not a CID".into())),
            })
            .collect::<Result<Vec<_>>>()?,
        None if version == 2 => Vec::new(),
        _ => return Err(Error::Car("header has no roots".into())),
    };
    Ok((version, roots))
}

/// Read a CARv1-style header: (version, roots, bytes consumed).
fn read_header(r: &mut dyn Read) -> Result<(u64, Vec<Cid>, u64)> {
    let (len, n) = read_varint(r)?.ok_or_else(|| Error::Car("empty file".into()))?;
    if len == 0 || len > MAX_HEADER {
        return Err(Error::Car(format!("header length {len} out of range")));
    }
    let mut h = vec![0u8; len as usize];
    read_exact_or(r, &mut h, "header")?;
    let (version, roots) = parse_v1_header(&h)?;
    Ok((version, roots, n + len))
}

impl<R: Read> CarReader<R> {
    /// Read the header(s).
    pub fn new(mut r: R) -> Result<Self> {
        let (version, roots, offset) = read_header(&mut r)?;
        match version {
            1 => Ok(CarReader {
                r,
                roots,
                version,
                remaining: None,
                offset,
            }),
            2 => {
                let mut offset = offset;
                let mut hdr = [0u8; 40];
                read_exact_or(&mut r, &mut hdr, "CARv2 header")?;
                offset += 40;
                let word = |i: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&hdr[i..i + 8]);
                    u64::from_le_bytes(b)
                };
                let (data_offset, data_size) = (word(16), word(24));
                if data_offset < offset {
                    return Err(Error::Car(format!(
                        "CARv2 data offset {data_offset} inside the header"
                    )));
                }
                let skip = data_offset - offset;
                let skipped = std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())
                    .map_err(|e| Error::io("reading CAR", e))?;
                if skipped != skip {
                    return Err(Error::Car("truncated before CARv2 payload".into()));
                }
                let (inner_version, roots, consumed) = read_header(&mut (&mut r).take(data_size))?;
                if inner_version != 1 {
                    return Err(Error::Car("CARv2 payload is not CARv1".into()));
                }
                Ok(CarReader {
                    r,
                    roots,
                    version: 2,
                    remaining: Some(data_size.saturating_sub(consumed)),
                    offset: data_offset + consumed,
                })
            }
            v => Err(Error::Car(format!("unsupported CAR version {v}"))),
        }
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// 1 or 2.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The next block, hash-checked; `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>> {
        if self.remaining == Some(0) {
            return Ok(None);
        }
        let at = self.offset;
        let Some((len, n)) = read_varint(&mut self.r)? else {
            if self.remaining.is_some() {
                return Err(Error::Car("truncated CARv2 payload".into()));
            }
            return Ok(None);
        };
        if len == 0 || len > MAX_SECTION {
            return Err(Error::Car(format!(
                "section at byte {at} has length {len} (out of range)"
            )));
        }
        if let Some(rem) = self.remaining {
            if n + len > rem {
                return Err(Error::Car(format!(
                    "section at byte {at} runs past the CARv2 payload"
                )));
            }
            self.remaining = Some(rem - n - len);
        }
        let mut buf = vec![0u8; len as usize];
        read_exact_or(&mut self.r, &mut buf, &format!("section at byte {at}"))?;
        self.offset += n + len;
        let mut cur = &buf[..];
        let cid = Cid::read_bytes(&mut cur)
            .map_err(|e| Error::Car(format!("bad CID in section at byte {at}: {e}")))?;
        let data = buf[buf.len() - cur.len()..].to_vec();
        cids::verify(&cid, &data).map_err(|e| match e {
            Error::HashMismatch(c) => {
                Error::Car(format!("block {c} at byte {at} does not match its hash"))
            }
            other => other,
        })?;
        Ok(Some((cid, data)))
    }
}

/// What [`import`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarImport {
    /// The roots named in the header.
    pub roots: Vec<Cid>,
    /// Blocks read (each hash-checked) and handed to the sink.
    pub blocks: u64,
    /// Their total size.
    pub bytes: u64,
}

/// Read a CARv1 or CARv2 stream into `sink`: every block hash-checked, its links recorded
/// (none for codecs kiln cannot parse). Stops at the first bad byte.
pub fn import(r: impl Read, sink: &mut dyn crate::BlockSink) -> Result<CarImport> {
    let mut car = CarReader::new(r)?;
    let mut out = CarImport {
        roots: car.roots().to_vec(),
        ..CarImport::default()
    };
    while let Some((cid, data)) = car.next_block()? {
        let ls = match links::links_of(&cid, &data) {
            Ok(l) => l,
            Err(Error::Unsupported { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        sink.put(&cid, &data, &ls)?;
        out.blocks += 1;
        out.bytes += data.len() as u64;
    }
    Ok(out)
}

/// Size in bytes of the varint prefix for a section (handy for size estimates).
pub fn section_overhead(cid: &Cid, data_len: usize) -> usize {
    let l = cid.encoded_len() + data_len;
    varint_len(l as u64) + cid.encoded_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBlocks;
    use crate::import::{ImportOptions, Profile, import_bytes};

    #[test]
    fn header_matches_dag_cbor() {
        let c: Cid = "bafkqaaa".parse().unwrap();
        let h = encode_header(&[c]);
        let (v, roots) = parse_v1_header(&h).unwrap();
        assert_eq!((v, roots), (1, vec![c]));
    }

    #[test]
    fn roundtrip_v1_and_v2_and_corruption() {
        let mut m = MemoryBlocks::default();
        let mut o = ImportOptions::from_profile(Profile::KuboV0);
        o.chunk_size = 10;
        o.max_links = 3;
        let f = import_bytes(&mut m, &[7u8; 1000], &o).unwrap();
        let mut car = Vec::new();
        let n = export_dag(&m, &f.cid, &mut car).unwrap();
        assert_eq!(n as usize, m.blocks.len());
        let mut r = CarReader::new(&car[..]).unwrap();
        assert_eq!(r.roots(), &[f.cid]);
        let mut count = 0;
        while r.next_block().unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, n);

        let mut v2 = V2_PRAGMA.to_vec();
        let mut hdr = [0u8; 40];
        hdr[16..24].copy_from_slice(&(51u64).to_le_bytes());
        hdr[24..32].copy_from_slice(&(car.len() as u64).to_le_bytes());
        v2.extend_from_slice(&hdr);
        v2.extend_from_slice(&car);
        v2.extend_from_slice(b"index bytes that must be ignored");
        let mut r = CarReader::new(&v2[..]).unwrap();
        assert_eq!(r.version(), 2);
        let mut count2 = 0;
        while r.next_block().unwrap().is_some() {
            count2 += 1;
        }
        assert_eq!(count2, n);

        let mut bad = car.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut r = CarReader::new(&bad[..]).unwrap();
        let err = loop {
            match r.next_block() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("corruption not detected"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("does not match its hash"), "{err}");
        let truncated = &car[..car.len() - 3];
        let mut r = CarReader::new(truncated).unwrap();
        assert!(std::iter::from_fn(|| r.next_block().transpose()).any(|x| x.is_err()));
    }
}
