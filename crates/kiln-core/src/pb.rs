//! Protobuf wire-format helpers (varints, tags, length-delimited fields) shared by
//! the dag-pb and UnixFS codecs, plus unsigned varints as used by CAR.

/// Append `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes `v` takes as a varint.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Read a varint from the front of `buf`: the value and the bytes used.
pub fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, b) in buf.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Append a length-delimited field.
pub fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Append a varint field.
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, v);
}

/// Size of a length-delimited field with a payload of `len` bytes.
pub fn bytes_field_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(len as u64) + len
}

/// One decoded field.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 1.
    Fixed64(u64),
}

/// Iterate over the fields of a protobuf message: `(field number, value)` or an error text.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Start reading `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let r = (|| {
            let (key, n) = get_varint(self.buf).ok_or("bad field key")?;
            self.buf = &self.buf[n..];
            let field = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
            if field == 0 {
                return Err("field number 0".to_string());
            }
            let value = match key & 7 {
                0 => {
                    let (v, n) = get_varint(self.buf).ok_or("bad varint")?;
                    self.buf = &self.buf[n..];
                    Field::Varint(v)
                }
                2 => {
                    let (len, n) = get_varint(self.buf).ok_or("bad length")?;
                    let rest = &self.buf[n..];
                    let len = usize::try_from(len).map_err(|_| "length too large")?;
                    if len > rest.len() {
                        return Err("field runs past the end".to_string());
                    }
                    self.buf = &rest[len..];
                    Field::Bytes(&rest[..len])
                }
                5 => {
                    let b: [u8; 4] = self
                        .buf
                        .get(..4)
                        .ok_or("truncated fixed32")?
                        .try_into()
                        .map_err(|_| "truncated")?;
                    self.buf = &self.buf[4..];
                    Field::Fixed32(u32::from_le_bytes(b))
                }
                1 => {
                    let b: [u8; 8] = self
                        .buf
                        .get(..8)
                        .ok_or("truncated fixed64")?
                        .try_into()
                        .map_err(|_| "truncated")?;
                    self.buf = &self.buf[8..];
                    Field::Fixed64(u64::from_le_bytes(b))
                }
                t => return Err(format!("unsupported wire type {t}")),
            };
            Ok((field, value))
        })();
        if r.is_err() {
            self.buf = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(get_varint(&b), Some((v, b.len())));
        }
        assert_eq!(get_varint(&[0x80]), None);
    }
}
