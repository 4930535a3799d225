//! A small, explicit binary encoding for stored values: little-endian integers and floats,
//! length-prefixed byte strings. Hand-written rather than derived so that the bytes on disk
//! are exactly what `record.rs` says, and a change to a Rust struct cannot silently change
//! the file format. Every read is bounds-checked: a damaged value is an error, never a panic.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

/// Compresses bulky, mostly-zero fields (the model input, heatmaps, thumbnails): a record
/// that fits in 8 KiB instead of 16 halves the store (redb allocates in powers of two).
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Decompresses a [`deflate`]d field that must come out at exactly `len` bytes (so a
/// damaged or hostile value can neither run long nor short).
pub fn inflate(bytes: &[u8], len: usize) -> CodecResult<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    DeflateDecoder::new(bytes)
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a compressed field does not decompress: {e}"))?;
    if out.len() != len {
        return Err(format!(
            "a compressed field of {} bytes where {len} were expected",
            out.len()
        ));
    }
    Ok(out)
}

/// Packs bytes that are mostly zero (thumbnails: strokes on black) as runs: a count of
/// zeros, a count of literal bytes, the literals, again and again. Unlike deflate it decodes
/// with no set-up cost, which matters when a gallery page unpacks a hundred of them.
pub fn pack_zero_runs(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut i = 0;
    while i < bytes.len() {
        let zeros = bytes[i..].iter().take(255).take_while(|&&b| b == 0).count();
        i += zeros;
        let literals = bytes[i..].iter().take(255).take_while(|&&b| b != 0).count();
        out.push(zeros as u8);
        out.push(literals as u8);
        out.extend_from_slice(&bytes[i..i + literals]);
        i += literals;
    }
    out
}

/// Unpacks [`pack_zero_runs`] into exactly `len` bytes.
pub fn unpack_zero_runs(packed: &[u8], len: usize) -> CodecResult<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < packed.len() {
        let (zeros, literals) = match packed.get(i..i + 2) {
            Some(&[z, l]) => (z as usize, l as usize),
            _ => return Err("a zero-run field ends early".into()),
        };
        i += 2;
        let run = packed
            .get(i..i + literals)
            .ok_or("a zero-run field ends early")?;
        if out.len() + zeros + literals > len {
            return Err(format!("a zero-run field longer than {len} bytes"));
        }
        out.resize(out.len() + zeros, 0);
        out.extend_from_slice(run);
        i += literals;
    }
    if out.len() != len {
        return Err(format!(
            "a zero-run field of {} bytes where {len} were expected",
            out.len()
        ));
    }
    Ok(out)
}

/// Appends fields to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f32(&mut self, v: f32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn raw(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }

    /// A byte string with a u32 length in front.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.raw(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn f32s(&mut self, v: &[f32]) {
        self.u32(v.len() as u32);
        for &x in v {
            self.f32(x);
        }
    }

    /// Floats, compressed: the count, then the deflated little-endian bytes.
    pub fn packed_f32s(&mut self, v: &[f32]) {
        let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.u32(v.len() as u32);
        self.bytes(&deflate(&raw));
    }

    /// Mostly-zero bytes: the length, then [`pack_zero_runs`].
    pub fn zero_run_bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.bytes(&pack_zero_runs(v));
    }

    /// Bytes, compressed: the length, then the deflated bytes.
    pub fn packed_bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.bytes(&deflate(v));
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fields back; every method fails with a short description instead of panicking.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

pub type CodecResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> CodecResult<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "value ends early: {} more bytes wanted at {} of {}",
                    n,
                    self.at,
                    self.bytes.len()
                )
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> CodecResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> CodecResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> CodecResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> CodecResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> CodecResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn f32(&mut self) -> CodecResult<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    pub fn raw<const N: usize>(&mut self) -> CodecResult<[u8; N]> {
        self.array()
    }

    /// A length-prefixed byte string of at most `max` bytes (the cap keeps a damaged length
    /// from asking for gigabytes).
    pub fn bytes(&mut self, max: usize) -> CodecResult<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("a field of {len} bytes; at most {max} expected"));
        }
        self.take(len)
    }

    pub fn string(&mut self, max: usize) -> CodecResult<String> {
        let bytes = self.bytes(max)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "text that is not UTF-8".to_string())
    }

    pub fn f32s(&mut self, max: usize) -> CodecResult<Vec<f32>> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("{len} numbers; at most {max} expected"));
        }
        let raw = self.take(len * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads [`Writer::packed_f32s`]: at most `max` floats.
    pub fn packed_f32s(&mut self, max: usize) -> CodecResult<Vec<f32>> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("{len} numbers; at most {max} expected"));
        }
        let packed = self.bytes(4 * max + 1024)?;
        let raw = inflate(packed, 4 * len)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads [`Writer::packed_bytes`]: at most `max` bytes.
    pub fn packed_bytes(&mut self, max: usize) -> CodecResult<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("a field of {len} bytes; at most {max} expected"));
        }
        let packed = self.bytes(max + 1024)?;
        inflate(packed, len)
    }

    /// Reads [`Writer::zero_run_bytes`]: at most `max` bytes.
    pub fn zero_run_bytes(&mut self, max: usize) -> CodecResult<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("a field of {len} bytes; at most {max} expected"));
        }
        let packed = self.bytes(2 * max + 2)?;
        unpack_zero_runs(packed, len)
    }

    /// Values must be read to the end: trailing bytes mean a different layout.
    pub fn finish(self) -> CodecResult<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the value",
                self.bytes.len() - self.at
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input() {
        let mut w = Writer::default();
        w.u8(7);
        w.u16(300);
        w.u64(u64::MAX - 3);
        w.str("héllo");
        w.f32s(&[1.5, -0.25]);
        w.packed_f32s(&[0.0, 0.0, 3.5]);
        w.packed_bytes(&[0; 100]);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 300);
        assert_eq!(r.u64().unwrap(), u64::MAX - 3);
        assert_eq!(r.string(100).unwrap(), "héllo");
        assert_eq!(r.f32s(10).unwrap(), vec![1.5, -0.25]);
        assert_eq!(r.packed_f32s(10).unwrap(), vec![0.0, 0.0, 3.5]);
        assert_eq!(r.packed_bytes(100).unwrap(), vec![0; 100]);
        r.finish().unwrap();
        assert!(
            Reader::new(&bytes[bytes.len() - 20..])
                .packed_bytes(10)
                .is_err()
        );

        let mut sparse = vec![0u8; 3000];
        sparse[700..1100].fill(9);
        sparse[2999] = 1;
        for data in [sparse, vec![], vec![5; 600], vec![0; 600]] {
            let packed = pack_zero_runs(&data);
            assert_eq!(unpack_zero_runs(&packed, data.len()).unwrap(), data);
            assert!(unpack_zero_runs(&packed, data.len() + 1).is_err());
            if !packed.is_empty() {
                assert!(unpack_zero_runs(&packed[..packed.len() - 1], data.len()).is_err());
            }
        }
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            let all = (|| {
                r.u8()?;
                r.u16()?;
                r.u64()?;
                r.string(100)?;
                r.f32s(10)?;
                r.packed_f32s(10)?;
                r.packed_bytes(100)
            })();
            assert!(all.is_err(), "cut at {cut}");
        }
    }
}
