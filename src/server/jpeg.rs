//! JPEG encoding of the frames sent to the page (`jpeg-encoder`, with its AVX2 path).

use image::RgbImage;

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The frame is larger than JPEG allows (65535 px a side).
    #[error("frame {width}x{height} is too large for JPEG")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The encoder failed.
    #[error(transparent)]
    Encoder(#[from] jpeg_encoder::EncodingError),
}

/// Encodes `src` at `quality` (1-100) into the caller-owned `dst` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] beyond 65535 px a side; [`EncodeError::Encoder`] otherwise.
pub fn encode_jpeg(src: &RgbImage, quality: u8, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (width, height) = src.dimensions();
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(EncodeError::TooLarge { width, height });
    };
    dst.clear();
    let encoder = jpeg_encoder::Encoder::new(&mut *dst, quality.clamp(1, 100));
    encoder.encode(src.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_decodable_jpeg() -> Result<(), Box<dyn std::error::Error>> {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 128]));
        let mut buf = Vec::new();
        encode_jpeg(&img, 80, &mut buf)?;
        let back = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)?;
        assert_eq!((back.width(), back.height()), (64, 48));
        Ok(())
    }
}
