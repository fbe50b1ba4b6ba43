//! Loading one still image from disk, with clear errors for everything that can be wrong with it.

use std::path::{Path, PathBuf};

use image::{ImageReader, RgbImage};
use thiserror::Error;

use crate::limits::{MAX_DECODE_BYTES, MAX_IMAGE_PIXELS as MAX_PIXELS};

/// Why an image file could not be loaded.
#[derive(Debug, Error)]
pub enum ImageLoadError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: the file is empty")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not an image format we read.
    #[error("{path}: not an image (unrecognised format)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The image header says it is larger than we accept.
    #[error("{path}: the image is {width}x{height}, over the limit of {limit} pixels")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// The image has no pixels.
    #[error("{path}: the image has no pixels ({width}x{height})")]
    NoPixels {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A JPEG whose data stops before its end marker: the decoder would fill the missing part
    /// with grey and every measurement on it would be wrong.
    #[error("{path}: truncated JPEG (no end-of-image marker after the scan data); pass --accept-damaged-images to use it anyway")]
    TruncatedJpeg {
        /// The file.
        path: PathBuf,
    },
    /// An image format, or a variant of one (a TIFF compression, a colour type), that Stipple
    /// does not read.
    #[error("{path}: unsupported image: {source} (Stipple reads PNG, JPEG, TIFF, BMP and WebP)")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The decoder's word on what it does not support.
        source: image::ImageError,
    },
    /// Decoding failed: corrupt or truncated data.
    #[error("{path}: corrupt or truncated image: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
}

/// What to do with a JPEG that stops before its end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Damaged {
    /// Refuse it ([`ImageLoadError::TruncatedJpeg`]).
    #[default]
    Refuse,
    /// Decode it anyway (the missing part comes out grey) and warn, naming the file.
    Warn,
}

/// File name extensions of the image formats Stipple reads (by their bytes, whatever the name;
/// an image folder lists the files with these names).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"];

/// Loads an image file as 8-bit RGB, checking its size from the header before decoding;
/// a truncated JPEG is refused.
///
/// # Errors
/// A missing or unreadable file, an empty file, an unknown format, an image over
/// [`MAX_PIXELS`] or without pixels, corrupt or truncated data: each names the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    load_rgb_with(path, Damaged::Refuse)
}

/// [`load_rgb`], with a choice for truncated JPEGs.
///
/// # Errors
/// As [`load_rgb`]; a truncated JPEG only with [`Damaged::Refuse`].
pub fn load_rgb_with(path: &Path, damaged: Damaged) -> Result<RgbImage, ImageLoadError> {
    Ok(open_checked(path, damaged)?.into_rgb8())
}

/// Decodes `path` after the checks of [`load_rgb`] (header size, pixel budget, JPEG end
/// marker), upright: the EXIF orientation a camera or phone wrote is applied, as OpenCV's
/// `imread` and every image viewer do, so pixel positions in Stipple's output are those of
/// the picture as its user sees it.
///
/// # Errors
/// As [`load_rgb_with`].
pub fn open_checked(path: &Path, damaged: Damaged) -> Result<image::DynamicImage, ImageLoadError> {
    use image::ImageDecoder;
    let reader = checked_reader(path, damaged)?;
    let read = || -> image::ImageResult<image::DynamicImage> {
        let mut decoder = reader.into_decoder()?;
        let orientation = decoder.orientation()?;
        let mut img = image::DynamicImage::from_decoder(decoder)?;
        img.apply_orientation(orientation);
        Ok(img)
    };
    read().map_err(|source| decode_error(path, source))
}

/// A decoder's error on `path`: an unsupported format or variant is named as such, anything
/// else is corrupt or truncated data.
fn decode_error(path: &Path, source: image::ImageError) -> ImageLoadError {
    match source {
        source @ image::ImageError::Unsupported(_) => ImageLoadError::Unsupported {
            path: path.to_owned(),
            source,
        },
        source => ImageLoadError::Decode {
            path: path.to_owned(),
            source,
        },
    }
}

/// A reader for `path` that has passed the checks of [`load_rgb`] and carries decoder limits
/// (the header's size, [`MAX_DECODE_BYTES`]).
///
/// # Errors
/// As [`load_rgb_with`], except decoding errors, which come when the caller decodes.
fn checked_reader(
    path: &Path,
    damaged: Damaged,
) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, ImageLoadError> {
    let io = |source| ImageLoadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a directory",
        )));
    }
    if meta.len() == 0 {
        return Err(ImageLoadError::EmptyFile {
            path: path.to_owned(),
        });
    }
    // Judge the format by the bytes, never by the file name.
    let mut head = [0u8; 32];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = std::io::Read::read(&mut file, &mut head).map_err(io)?;
    if image::guess_format(&head[..n]).is_err() {
        return Err(ImageLoadError::UnknownFormat {
            path: path.to_owned(),
        });
    }
    let reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|source| decode_error(path, source))?;
    if width == 0 || height == 0 {
        return Err(ImageLoadError::NoPixels {
            path: path.to_owned(),
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageLoadError::TooLarge {
            path: path.to_owned(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    let mut reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    if reader.format() == Some(image::ImageFormat::Jpeg)
        && !jpeg_file_is_complete(path).map_err(io)?
    {
        match damaged {
            Damaged::Refuse => {
                return Err(ImageLoadError::TruncatedJpeg {
                    path: path.to_owned(),
                })
            }
            Damaged::Warn => tracing::warn!(
                image = %path.display(),
                "truncated JPEG used anyway (--accept-damaged-images): its missing part is grey"
            ),
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader)
}

/// Whether the JPEG in `path` has an end-of-image marker after its first scan.
fn jpeg_file_is_complete(path: &Path) -> std::io::Result<bool> {
    Ok(jpeg_is_complete(&std::fs::read(path)?))
}

/// Whether a JPEG stream has an end-of-image marker (`FF D9`) after its first scan. The
/// segments before the scan are walked by their lengths (so a thumbnail's own markers inside
/// APP1 are skipped); inside entropy-coded data a `FF` byte is always followed by `00` or a
/// restart marker, so the first `FF D9` there is the real end. A file cut short has none.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    // Walk marker segments up to the first start-of-scan.
    loop {
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        let Some(len) = bytes
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        i += 2 + len;
        if marker == 0xDA {
            break;
        }
        if marker == 0xD9 || i > bytes.len() {
            return false;
        }
    }
    bytes
        .get(i..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]))
}

#[cfg(test)]
mod tests {
    use image::ImageEncoder as _;

    use super::*;

    /// EXIF (a big-endian TIFF block) holding one tag: the orientation.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut exif = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
        exif.extend_from_slice(&value.to_be_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        exif
    }

    #[test]
    fn a_phone_photo_is_read_upright() -> Result<(), Box<dyn std::error::Error>> {
        // Stored 30 wide and 40 high, a dark block at its top left, with EXIF orientation 6
        // (turn 90 degrees clockwise to view): seen 40 wide and 30 high, the block top right.
        let mut stored = RgbImage::from_pixel(30, 40, image::Rgb([200, 150, 120]));
        for y in 0..8 {
            for x in 0..8 {
                stored.put_pixel(x, y, image::Rgb([20, 20, 20]));
            }
        }
        let mut bytes = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
        encoder.set_exif_metadata(exif_orientation(6))?;
        encoder.write_image(stored.as_raw(), 30, 40, image::ExtendedColorType::Rgb8)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("phone.jpg");
        std::fs::write(&path, bytes)?;
        let img = load_rgb(&path)?;
        assert_eq!(img.dimensions(), (40, 30));
        assert!(img.get_pixel(36, 3)[0] < 60, "{:?}", img.get_pixel(36, 3));
        assert!(img.get_pixel(3, 3)[0] > 150, "{:?}", img.get_pixel(3, 3));
        assert!(img.get_pixel(3, 26)[0] > 150, "{:?}", img.get_pixel(3, 26));
        Ok(())
    }

    #[test]
    fn tiff_bmp_and_webp_are_read_and_gif_is_named_unsupported(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut img = RgbImage::from_pixel(40, 30, image::Rgb([200, 150, 120]));
        img.put_pixel(10, 20, image::Rgb([30, 40, 90]));
        for name in ["scope.tiff", "scope.bmp", "scope.webp"] {
            let path = dir.path().join(name);
            img.save(&path)?;
            assert_eq!(load_rgb(&path)?, img, "{name}");
        }
        let gif = dir.path().join("clip.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")?;
        let err = load_rgb(&gif).unwrap_err().to_string();
        assert!(
            err.contains("clip.gif")
                && err.contains("unsupported image")
                && err.contains("Gif is not supported"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn reports_each_problem_with_the_file_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.png");
        let err = load_rgb(&missing).unwrap_err().to_string();
        assert!(
            err.contains("missing.png") && err.contains("cannot read"),
            "{err}"
        );

        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"")?;
        let err = load_rgb(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.png") && err.contains("empty"), "{err}");

        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"hello, this is not an image at all")?;
        let err = load_rgb(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("unrecognised"),
            "{err}"
        );

        let good = dir.path().join("good.png");
        RgbImage::from_pixel(40, 30, image::Rgb([200, 150, 120])).save(&good)?;
        let bytes = std::fs::read(&good)?;
        let truncated = dir.path().join("truncated.png");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
        let err = load_rgb(&truncated).unwrap_err().to_string();
        assert!(
            err.contains("truncated.png") && err.contains("corrupt or truncated"),
            "{err}"
        );

        let img = load_rgb(&good)?;
        assert_eq!(img.dimensions(), (40, 30));
        Ok(())
    }

    #[test]
    fn a_truncated_jpeg_is_refused_unless_accepted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let img = RgbImage::from_fn(160, 120, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut jpeg = Vec::new();
        crate::server::jpeg::encode_jpeg(&img, 90, &mut jpeg)?;
        assert!(jpeg_is_complete(&jpeg));
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &jpeg[..jpeg.len() * 2 / 3])?;
        assert!(!jpeg_is_complete(&jpeg[..jpeg.len() * 2 / 3]));
        let err = load_rgb(&cut).unwrap_err().to_string();
        assert!(
            err.contains("cut.jpg") && err.contains("truncated JPEG"),
            "{err}"
        );
        assert_eq!(load_rgb_with(&cut, Damaged::Warn)?.dimensions(), (160, 120));
        let whole = dir.path().join("whole.jpg");
        std::fs::write(&whole, &jpeg)?;
        assert_eq!(load_rgb(&whole)?.dimensions(), (160, 120));
        Ok(())
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() -> Result<(), Box<dyn std::error::Error>> {
        // A PNG header declaring 20000x20000 (400 MP) with no data to speak of.
        let dir = tempfile::tempdir()?;
        let bomb = dir.path().join("bomb.png");
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png).write_image(
            &[0u8; 8 * 8 * 3],
            8,
            8,
            image::ExtendedColorType::Rgb8,
        )?;
        // Patch the IHDR width/height (bytes 16..24) and its CRC (29..33).
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&bomb, &png)?;
        let err = load_rgb(&bomb).unwrap_err().to_string();
        assert!(
            err.contains("bomb.png") && err.contains("over the limit"),
            "{err}"
        );
        Ok(())
    }

    /// CRC-32 (PNG's), bit by bit: tests only.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
