//! An image folder or numbered frame sequence, played in name order at a fixed rate, looping.
//!
//! Useful to replay what a camera recorded. Files ending in `.png`, `.jpg` or `.jpeg` are
//! taken, sorted by name (so `000.png`, `001.png`, ... play in order); the folder is listed once
//! at start, and each image is decoded when it is due.

use std::path::{Path, PathBuf};

use super::CaptureError;

/// A looping image-sequence source.
#[derive(Debug)]
pub struct ImageSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
}

impl ImageSource {
    /// Lists `dir`.
    ///
    /// # Errors
    /// [`CaptureError::Io`] when the folder cannot be read, [`CaptureError::EmptyFolder`] when it
    /// holds no image.
    pub fn open(dir: &Path) -> Result<Self, CaptureError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| CaptureError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    super::file::IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(CaptureError::EmptyFolder(dir.to_path_buf()));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            next: 0,
        })
    }

    /// A short description for the page and `/api/status`.
    pub fn describe(&self) -> String {
        format!(
            "images:{} ({} frames)",
            self.dir.display(),
            self.files.len()
        )
    }

    /// Decodes the next image (looping at the end).
    ///
    /// # Errors
    /// [`CaptureError::Decode`] for a file that is not a readable image; the caller skips it.
    pub fn next_image(&mut self) -> Result<image::RgbImage, CaptureError> {
        let path = &self.files[self.next % self.files.len()];
        self.next = (self.next + 1) % self.files.len();
        // Same checks as every other image path: pixel budget from the header, truncated JPEG.
        super::file::load_rgb(path).map_err(|e| CaptureError::Decode {
            path: path.clone(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_in_name_order_and_loops() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (name, v) in [("002.png", 20u8), ("001.png", 10), ("notes.txt", 0)] {
            if name.ends_with(".png") {
                image::RgbImage::from_pixel(4, 3, image::Rgb([v, v, v]))
                    .save(dir.path().join(name))?;
            } else {
                std::fs::write(dir.path().join(name), "x")?;
            }
        }
        let mut src = ImageSource::open(dir.path())?;
        let seq: Vec<u8> = (0..3)
            .map(|_| src.next_image().map(|i| i.get_pixel(0, 0)[0]))
            .collect::<Result<_, _>>()?;
        assert_eq!(seq, vec![10, 20, 10]);
        Ok(())
    }

    #[test]
    fn empty_folder_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let err = ImageSource::open(dir.path()).expect_err("empty");
        assert!(err.to_string().contains("no image"), "{err}");
        Ok(())
    }
}
