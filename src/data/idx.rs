//! The IDX format of the MNIST files (<http://yann.lecun.com/exdb/mnist/>), raw or gzipped.
//!
//! A file is a 4-byte magic number `00 00 <type> <ndims>`, then `ndims` big-endian `u32`
//! sizes, then the data in row-major order. Only unsigned bytes (type `0x08`) occur in
//! MNIST, so only those are read. The header is checked against caps *before* the data
//! buffer is allocated, and the data is read from a stream, so neither a lying header nor a
//! gzip bomb can make the reader allocate more than [`MAX_DATA_BYTES`].

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::DataError;

/// The IDX type byte for unsigned 8-bit data.
pub const TYPE_U8: u8 = 0x08;
/// Largest size accepted for the first (item count) dimension.
pub const MAX_ITEMS: u64 = 1 << 24;
/// Largest size accepted for any other dimension (image side).
pub const MAX_SIDE: u64 = 1 << 12;
/// Largest data section accepted, in bytes (MNIST's training images are 47 MB).
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// Most bytes reserved before any data has arrived.
const INITIAL_CAPACITY: usize = 1 << 20;
/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes, outermost first (`[count, rows, cols]` for images, `[count]` for labels).
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with exactly `ndims` dimensions. Gzip is detected
/// from the content (not the file name), so a decompressed copy named `*.gz` still reads.
pub fn read_idx_file(path: &Path, ndims: usize) -> Result<IdxArray, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buffered = BufReader::new(file);
    let head = buffered.fill_buf().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if head.starts_with(&GZIP_MAGIC) {
        let mut source = IdxSource::new(GzDecoder::new(buffered), path, true);
        read_idx(&mut source, ndims)
    } else {
        let mut source = IdxSource::new(buffered, path, false);
        read_idx(&mut source, ndims)
    }
}

/// Parses an IDX file already in memory (raw or gzipped); `name` is used in errors.
pub fn parse_idx_bytes(bytes: &[u8], name: &Path, ndims: usize) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        read_idx(
            &mut IdxSource::new(GzDecoder::new(bytes), name, true),
            ndims,
        )
    } else {
        read_idx(&mut IdxSource::new(bytes, name, false), ndims)
    }
}

/// A byte stream plus what is needed to turn its failures into [`DataError`]s.
struct IdxSource<'p, R> {
    reader: R,
    path: &'p Path,
    gzipped: bool,
}

impl<'p, R: Read> IdxSource<'p, R> {
    fn new(reader: R, path: &'p Path, gzipped: bool) -> Self {
        Self {
            reader,
            path,
            gzipped,
        }
    }

    fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// A read failure inside a gzip stream means the compressed data is bad, not the disk.
    fn error(&self, source: std::io::Error) -> DataError {
        if self.gzipped {
            DataError::Gzip {
                path: self.path(),
                source,
            }
        } else {
            DataError::Io {
                path: self.path(),
                source,
            }
        }
    }

    /// Reads up to `limit` bytes; fewer only at the end of the stream. The buffer grows as
    /// bytes arrive, so a header that lies about the size costs nothing up front.
    fn read_up_to(&mut self, limit: usize) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(limit.min(INITIAL_CAPACITY));
        (&mut self.reader)
            .take(limit as u64)
            .read_to_end(&mut out)
            .map_err(|e| self.error(e))?;
        Ok(out)
    }
}

fn read_idx<R: Read>(source: &mut IdxSource<'_, R>, ndims: usize) -> Result<IdxArray, DataError> {
    let magic = source.read_up_to(4)?;
    if magic.len() < 4 {
        return Err(DataError::TruncatedHeader {
            path: source.path(),
            expected: 4,
        });
    }
    check_magic(&magic, ndims, source.path)?;

    let header_bytes = 4 * ndims;
    let raw_dims = source.read_up_to(header_bytes)?;
    if raw_dims.len() < header_bytes {
        return Err(DataError::TruncatedHeader {
            path: source.path(),
            expected: 4 + header_bytes,
        });
    }
    let dims = parse_dims(&raw_dims, source.path)?;
    let expected = data_len(&dims, source.path)?;

    let data = source.read_up_to(expected)?;
    if data.len() < expected {
        return Err(DataError::Truncated {
            path: source.path(),
            expected,
            found: data.len(),
        });
    }
    // Reading on to the end also makes the gzip decoder verify its CRC.
    if !source.read_up_to(1)?.is_empty() {
        return Err(DataError::TrailingData {
            path: source.path(),
            expected,
        });
    }
    Ok(IdxArray { dims, data })
}

fn check_magic(magic: &[u8], ndims: usize, path: &Path) -> Result<(), DataError> {
    let bad = |reason: String| DataError::BadMagic {
        path: path.to_path_buf(),
        reason,
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "magic number starts with {:02x} {:02x}, expected 00 00",
            magic[0], magic[1]
        )));
    }
    if magic[2] != TYPE_U8 {
        return Err(bad(format!(
            "data type byte is {:#04x}, only {TYPE_U8:#04x} (unsigned byte) is supported",
            magic[2]
        )));
    }
    if usize::from(magic[3]) != ndims {
        return Err(bad(format!("{} dimensions, expected {ndims}", magic[3])));
    }
    Ok(())
}

/// Decodes the big-endian sizes and caps each one, so nothing absurd is ever allocated.
fn parse_dims(raw: &[u8], path: &Path) -> Result<Vec<usize>, DataError> {
    raw.chunks_exact(4)
        .enumerate()
        .map(|(index, b)| {
            let size = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let limit = if index == 0 { MAX_ITEMS } else { MAX_SIDE };
            if size == 0 || size > limit {
                return Err(DataError::DimensionOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    size,
                    limit,
                });
            }
            // Lossless: the caps are far below usize::MAX on every supported target.
            Ok(size as usize)
        })
        .collect()
}

fn data_len(dims: &[usize], path: &Path) -> Result<usize, DataError> {
    let bytes = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    if bytes > MAX_DATA_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            bytes,
            limit: MAX_DATA_BYTES,
        });
    }
    Ok(bytes as usize)
}
