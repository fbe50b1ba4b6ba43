//! What one candidate dot's region looks like: measured by [`super::blobs`], read by the kind
//! rule and the per-frame kind mixture ([`super::kinds`]).

/// What one candidate's region looks like.
#[derive(Debug, Clone, Copy, Default)]
pub struct Region {
    /// Weighted centroid x (px, pixel centres at +0.5).
    pub x: f64,
    /// Weighted centroid y.
    pub y: f64,
    /// Peak relative darkness.
    pub peak: f32,
    /// Pixels in the region.
    pub area_px: usize,
    /// Equivalent radius (px).
    pub radius_px: f64,
    /// Square root of the ratio of the covariance eigenvalues (1 = round).
    pub elongation: f64,
    /// Length of the main axis (px), 4 standard deviations.
    pub length_px: f64,
    /// The region reached the edge of the analysis window: it is never a dot, and growing
    /// stopped there, so its other measurements cover only the part grown by then.
    pub truncated: bool,
    /// The peak lies on the image border: the dot is mostly outside the frame (or the border is
    /// an artefact of the lens or the sensor), so its centre cannot be measured.
    pub on_border: bool,
    /// (R - B) / luminance of the region minus that of the skin around it.
    pub tint: f64,
    /// Mean luminance of the region relative to the skin (0 black, 1 skin).
    pub rel_luma: f64,
    /// ln of the region's red over its blue, each relative to the skin ring's.
    pub chroma_rb: f64,
    /// ln of the region's green over its blue, each relative to the skin ring's.
    pub chroma_gb: f64,
    /// CIELAB of the region's mean colour minus that of the skin ring: L*, a* (green to red)
    /// and b* (blue to yellow). Ink is bluer and less red than the skin (negative a*, b*),
    /// hair warmer; on dark skin that is where they differ most. NaN when no ring pixel lies in
    /// the frame.
    pub delta_lab: [f64; 3],
}
