//! The MNIST test set in its original IDX format (gzip or plain), as cnnviz reads it.

use std::io::Read;
use std::path::Path;

/// Test images as 0..1 floats (row-major, one image after another) and their labels.
pub struct TestSet {
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
    pub image_len: usize,
}

impl TestSet {
    pub fn load(dir: &Path) -> Result<Self, String> {
        let images = read_idx(dir, "t10k-images-idx3-ubyte", 2051)?;
        let labels = read_idx(dir, "t10k-labels-idx1-ubyte", 2049)?;
        let (image_dims, pixels) = images;
        let (label_dims, labels) = labels;
        if image_dims.len() != 3 || label_dims.len() != 1 || image_dims[0] != label_dims[0] {
            return Err(format!(
                "{}: image dims {image_dims:?} do not match label dims {label_dims:?}",
                dir.display()
            ));
        }
        Ok(Self {
            pixels: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
            labels,
            image_len: image_dims[1] * image_dims[2],
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `batch` consecutive images starting at `start`, wrapping round the end of the set.
    pub fn batch(&self, start: usize, batch: usize) -> (Vec<f32>, Vec<u8>) {
        let mut pixels = Vec::with_capacity(batch * self.image_len);
        let mut labels = Vec::with_capacity(batch);
        for i in 0..batch {
            let index = (start + i) % self.len();
            let at = index * self.image_len;
            pixels.extend_from_slice(&self.pixels[at..at + self.image_len]);
            labels.push(self.labels[index]);
        }
        (pixels, labels)
    }
}

/// Reads `<dir>/<stem>.gz` or `<dir>/<stem>`: the dimensions and the u8 payload.
fn read_idx(dir: &Path, stem: &str, magic: u32) -> Result<(Vec<usize>, Vec<u8>), String> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    let bytes = if gz.is_file() {
        let raw = std::fs::read(&gz).map_err(|e| format!("{}: {e}", gz.display()))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: {e}", gz.display()))?;
        out
    } else {
        std::fs::read(&plain).map_err(|e| format!("{}: {e}", plain.display()))?
    };
    let word = |i: usize| -> Result<u32, String> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("{stem}: truncated header"))
    };
    let found = word(0)?;
    if found != magic {
        return Err(format!("{stem}: magic {found:#x}, expected {magic:#x}"));
    }
    let rank = (magic & 0xff) as usize;
    let dims = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Result<Vec<_>, _>>()?;
    let header = 4 * (rank + 1);
    let len: usize = dims.iter().product();
    let payload = bytes
        .get(header..header + len)
        .ok_or_else(|| format!("{stem}: {} bytes, header says {len}", bytes.len() - header))?;
    Ok((dims, payload.to_vec()))
}
