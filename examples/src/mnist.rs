//! MNIST and Fashion-MNIST in the IDX format of LeCun et al.
//!
//! The four files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`) are read and
//! validated: magic numbers, dimensions, counts, the exact amount of data, and that images and
//! labels agree. Any problem is an [`DatasetError`] naming the file.
//!
//! # Example
//! ```no_run
//! use burn::tensor::Device;
//! use burn_probability_examples::mnist::{Binarization, Mnist, Split};
//!
//! let mnist = Mnist::load("data/mnist")?;
//! let device = Device::flex();
//! let x = mnist.images_tensor(Split::Test, 0..100, Binarization::Static, &device); // [100, 784]
//! # Ok::<(), burn_probability_examples::mnist::DatasetError>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Distribution as Init, Tensor, TensorData};

/// A data file that is missing, unreadable, truncated or corrupt: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for DatasetError {}

/// Results of this module.
pub type Result<T> = core::result::Result<T, DatasetError>;

/// The IDX magic number of an unsigned-byte tensor of rank 3 (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// The IDX magic number of an unsigned-byte tensor of rank 1 (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Which half of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// How grey levels in `[0, 255]` become the `{0, 1}` pixels of a Bernoulli likelihood, or stay
/// grey levels ([`Binarization::None`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binarization {
    /// Grey levels scaled to `[0, 1]` (`pixel / 255`), not binarized: the data of a continuous
    /// Bernoulli likelihood (or of a Bernoulli cross-entropy on grey levels).
    None,
    /// `1[pixel > 127.5]`, fixed once (the convolutional VAE tutorial).
    Static,
    /// A fresh Bernoulli draw with probability `pixel / 255` each time the images are
    /// produced (Burda et al. 2016); uses the device's random generator.
    Dynamic,
    /// One Bernoulli draw with probability `pixel / 255` per pixel, made once and the same in
    /// every run: the "fixed binarization" of Salakhutdinov and Murray (2008) that Jang et al.
    /// (2017) train and test on (from a hash of the split, image and pixel, not their file).
    Fixed,
}

/// A uniform number in `[0, 1)` from a hash (splitmix64) of the split, image and pixel: the
/// draws of [`Binarization::Fixed`].
fn fixed_uniform(split: Split, image: usize, pixel: usize) -> f32 {
    let split = match split {
        Split::Train => 0u64,
        Split::Test => 1u64,
    };
    let mut z = (split << 60) ^ ((image as u64) << 20) ^ pixel as u64;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// One split's images and labels.
#[derive(Clone, Debug)]
pub struct IdxData {
    /// Row-major pixels, `count × rows × cols` bytes.
    pub pixels: Vec<u8>,
    /// One label per image (0–9).
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl IdxData {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// MNIST-format data: a training and a test split.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The training split.
    pub train: IdxData,
    /// The test split.
    pub test: IdxData,
}

/// The file names of the four IDX files, without `.gz`.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The md5 sums of the original MNIST `.gz` files, in the order of [`FILES`].
pub const MNIST_GZ_MD5: [&str; 4] = [
    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "d53e105ee54ea40749a09fcbcd1e9432",
    "9fb629c4189551a2d022fa330f9573f3",
    "ec29112dd5afa0611ce80d1b7f02629c",
];

fn dataset_error(path: &Path, message: impl Into<String>) -> DatasetError {
    DatasetError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The files of [`FILES`] missing from `dir` (neither plain nor `.gz`).
pub fn missing_files(dir: &Path) -> Vec<String> {
    FILES
        .iter()
        .filter(|name| find(dir, name).is_none())
        .map(|name| format!("{name}.gz"))
        .collect()
}

/// Reads a whole file, gunzipping it if its name ends in `.gz`.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| dataset_error(path, format!("cannot open: {e}")))?;
    let mut out = Vec::new();
    let result = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut out)
    } else {
        let mut file = file;
        file.read_to_end(&mut out)
    };
    result.map_err(|e| {
        dataset_error(
            path,
            format!("cannot read (truncated or corrupt gzip?): {e}"),
        )
    })?;
    Ok(out)
}

fn header(bytes: &[u8], path: &Path, words: usize) -> Result<Vec<u32>> {
    if bytes.len() < 4 * words {
        return Err(dataset_error(
            path,
            format!(
                "file is {} bytes, shorter than its {}-byte IDX header",
                bytes.len(),
                4 * words
            ),
        ));
    }
    Ok((0..words)
        .map(|i| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")))
        .collect())
}

/// Reads an IDX image file: `(count, rows, cols, pixels)`.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = read_bytes(path)?;
    let h = header(&bytes, path, 4)?;
    if h[0] != IMAGES_MAGIC {
        return Err(dataset_error(
            path,
            format!(
                "bad magic number {:#010x}: expected {IMAGES_MAGIC:#010x} (unsigned bytes, 3 dimensions) for an image file",
                h[0]
            ),
        ));
    }
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    if rows == 0 || cols == 0 {
        return Err(dataset_error(
            path,
            format!("image dimensions {rows}x{cols} are empty"),
        ));
    }
    let expected = count * rows * cols;
    let found = bytes.len() - 16;
    if found != expected {
        return Err(dataset_error(
            path,
            format!(
                "header announces {count} images of {rows}x{cols} = {expected} bytes of pixels, but the file has {found} (truncated or corrupt)"
            ),
        ));
    }
    Ok((count, rows, cols, bytes[16..].to_vec()))
}

/// Reads an IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_bytes(path)?;
    let h = header(&bytes, path, 2)?;
    if h[0] != LABELS_MAGIC {
        return Err(dataset_error(
            path,
            format!(
                "bad magic number {:#010x}: expected {LABELS_MAGIC:#010x} (unsigned bytes, 1 dimension) for a label file",
                h[0]
            ),
        ));
    }
    let count = h[1] as usize;
    let found = bytes.len() - 8;
    if found != count {
        return Err(dataset_error(
            path,
            format!(
                "header announces {count} labels, but the file has {found} (truncated or corrupt)"
            ),
        ));
    }
    if let Some(bad) = bytes[8..].iter().find(|&&l| l > 9) {
        return Err(dataset_error(
            path,
            format!("label {bad} is not a digit class 0-9"),
        ));
    }
    Ok(bytes[8..].to_vec())
}

fn read_split(dir: &Path, images: &str, labels: &str) -> Result<IdxData> {
    let missing = |name: &str| {
        dataset_error(
            &dir.join(format!("{name}.gz")),
            "file not found (neither .gz nor uncompressed)",
        )
    };
    let ipath = find(dir, images).ok_or_else(|| missing(images))?;
    let lpath = find(dir, labels).ok_or_else(|| missing(labels))?;
    let (count, rows, cols, pixels) = read_images(&ipath)?;
    let labels = read_labels(&lpath)?;
    if labels.len() != count {
        return Err(dataset_error(
            &lpath,
            format!(
                "{} labels, but {} has {count} images",
                labels.len(),
                ipath.display()
            ),
        ));
    }
    Ok(IdxData {
        pixels,
        labels,
        rows,
        cols,
    })
}

impl Mnist {
    /// Loads the four IDX files from `dir` (each as `name.gz` or `name`).
    ///
    /// # Errors
    /// [`DatasetError`] naming the file that is missing, truncated, corrupt, has a wrong
    /// magic number, or disagrees with its partner.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        Ok(Self {
            train: read_split(dir, FILES[0], FILES[1])?,
            test: read_split(dir, FILES[2], FILES[3])?,
        })
    }

    /// The split.
    pub fn split(&self, split: Split) -> &IdxData {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }

    /// Images `range` of a split as a `[n, rows·cols]` float tensor, binarized as asked.
    ///
    /// # Panics
    /// If `range` is outside the split.
    pub fn images_tensor(
        &self,
        split: Split,
        range: Range<usize>,
        binarization: Binarization,
        device: &Device,
    ) -> Tensor<2> {
        let indices: Vec<usize> = range.collect();
        self.gather_images(split, &indices, binarization, device)
    }

    /// The images at `indices` (any order) as a `[n, rows·cols]` tensor, binarized as asked.
    ///
    /// # Panics
    /// If an index is outside the split.
    pub fn gather_images(
        &self,
        split: Split,
        indices: &[usize],
        binarization: Binarization,
        device: &Device,
    ) -> Tensor<2> {
        let data = self.split(split);
        let d = data.rows * data.cols;
        let mut grey = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            let pixels = data.pixels[i * d..(i + 1) * d]
                .iter()
                .map(|&p| p as f32 / 255.0);
            if binarization == Binarization::Fixed {
                grey.extend(pixels.enumerate().map(|(j, p)| {
                    if fixed_uniform(split, i, j) < p {
                        1.0
                    } else {
                        0.0
                    }
                }));
            } else {
                grey.extend(pixels);
            }
        }
        let grey = Tensor::<2>::from_data(TensorData::new(grey, [indices.len(), d]), device);
        match binarization {
            Binarization::None | Binarization::Fixed => grey,
            Binarization::Static => grey.greater_elem(0.5).float(),
            Binarization::Dynamic => grey.random_like(Init::Default).lower(grey).float(),
        }
    }
}

/// The md5 digest of a file, as lowercase hex.
pub fn md5_hex(path: &Path) -> Result<String> {
    use md5::{Digest, Md5};
    let bytes =
        std::fs::read(path).map_err(|e| dataset_error(path, format!("cannot read: {e}")))?;
    Ok(Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [IMAGES_MAGIC, count, rows, cols] {
            b.extend(w.to_be_bytes());
        }
        b.extend(pixels);
        b
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [LABELS_MAGIC, labels.len() as u32] {
            b.extend(w.to_be_bytes());
        }
        b.extend(labels);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// A tiny data set: 3 training and 2 test images of 2x2 pixels.
    fn tiny(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("bp-mnist-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train: Vec<u8> = (0..12).map(|i| (i * 20) as u8).collect();
        std::fs::write(
            dir.join("train-images-idx3-ubyte.gz"),
            gz(&idx_images(3, 2, 2, &train)),
        )
        .unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte.gz"),
            gz(&idx_labels(&[1, 2, 3])),
        )
        .unwrap();
        std::fs::write(
            dir.join("t10k-images-idx3-ubyte"),
            idx_images(2, 2, 2, &[0, 255, 128, 127, 1, 2, 3, 4]),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_labels(&[7, 9])).unwrap();
        Dir(dir)
    }

    #[test]
    fn reads_gzipped_and_plain_files() {
        let dir = tiny("ok");
        let m = Mnist::load(&dir.0).unwrap();
        assert_eq!((m.train.len(), m.train.rows, m.train.cols), (3, 2, 2));
        assert_eq!(m.test.labels, vec![7, 9]);
        let x = m.images_tensor(Split::Test, 0..1, Binarization::Static, &Device::flex());
        let v: Vec<f32> = x.into_data().iter::<f32>().collect();
        assert_eq!(v, vec![0.0, 1.0, 1.0, 0.0]);
        let g = m.gather_images(Split::Train, &[2, 0], Binarization::None, &Device::flex());
        assert_eq!(g.dims(), [2, 4]);
        let grey: Vec<f32> = m
            .images_tensor(Split::Test, 0..1, Binarization::None, &Device::flex())
            .into_data()
            .iter::<f32>()
            .collect();
        let want: [f32; 4] = [0.0, 1.0, 128.0 / 255.0, 127.0 / 255.0];
        assert!(
            grey.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{grey:?}"
        );
    }

    #[test]
    fn fixed_binarization_is_a_bernoulli_draw_made_once() {
        // A uniform's mean over many pixels is 1/2 (4σ: 4·0.29/√200000 < 0.003), and a pixel
        // of grey level p is 1 with probability p: the same draws whatever the batch.
        let n = 200_000;
        let mean = (0..n)
            .map(|j| fixed_uniform(Split::Train, j / 784, j % 784) as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.5).abs() < 0.003, "mean {mean}");
        let dir = tiny("fixed");
        let m = Mnist::load(&dir.0).unwrap();
        let device = Device::flex();
        let a: Vec<f32> = m
            .gather_images(Split::Test, &[0, 1], Binarization::Fixed, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        let b: Vec<f32> = m
            .gather_images(Split::Test, &[1], Binarization::Fixed, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(
            &a[4..],
            &b[..],
            "image 1 is binarized the same in any batch"
        );
        // Grey levels 0 and 255 give 0 and 1.
        assert_eq!((a[0], a[1]), (0.0, 1.0));
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn corrupt_files_are_named_errors() {
        let check = |tag: &str, file: &str, bytes: Vec<u8>, words: &[&str]| {
            let dir = tiny(tag);
            std::fs::write(dir.0.join(file), bytes).unwrap();
            let msg = Mnist::load(&dir.0).unwrap_err().to_string();
            for w in words {
                assert!(msg.contains(w), "{tag}: {msg:?} should mention {w:?}");
            }
        };
        let good: Vec<u8> = (0..12).collect();
        check(
            "truncated",
            "train-images-idx3-ubyte.gz",
            gz(&idx_images(3, 2, 2, &good[..10])),
            &[
                "train-images-idx3-ubyte.gz",
                "12 bytes",
                "has 10",
                "truncated",
            ],
        );
        let mut bad_magic = idx_images(3, 2, 2, &good);
        bad_magic[3] = 0x01;
        check(
            "magic",
            "train-images-idx3-ubyte.gz",
            gz(&bad_magic),
            &["train-images", "bad magic number", "0x00000801"],
        );
        check(
            "count",
            "train-labels-idx1-ubyte.gz",
            gz(&idx_labels(&[1, 2])),
            &["train-labels", "2 labels", "3 images"],
        );
        let mut cut = gz(&idx_labels(&[1, 2, 3]));
        cut.truncate(cut.len() / 2);
        check(
            "gzip",
            "train-labels-idx1-ubyte.gz",
            cut,
            &["train-labels", "corrupt"],
        );
        check(
            "label",
            "t10k-labels-idx1-ubyte",
            idx_labels(&[7, 12]),
            &["t10k-labels", "label 12"],
        );
        check(
            "short",
            "t10k-labels-idx1-ubyte",
            vec![0, 0],
            &["t10k-labels", "shorter than"],
        );
    }

    #[test]
    fn missing_files_are_listed() {
        let dir = tiny("missing");
        std::fs::remove_file(dir.0.join("t10k-labels-idx1-ubyte")).unwrap();
        assert_eq!(
            missing_files(&dir.0),
            vec!["t10k-labels-idx1-ubyte.gz".to_string()]
        );
        let msg = Mnist::load(&dir.0).unwrap_err().to_string();
        assert!(
            msg.contains("t10k-labels-idx1-ubyte") && msg.contains("not found"),
            "{msg}"
        );
    }
}
