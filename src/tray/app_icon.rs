//! The app's own tray icon (`berth run --icon FILE.png`): the PNG is
//! decoded and scaled to the tray's size once, at start; the aggregate
//! state is then a small badge drawn over it at each change, so the panel
//! shows the app, not berth, and still says whether its backends are well.
//!
//! The file is the app's, not a backend's, but it is read with limits all
//! the same (its size, its pixels): a wrong path or a huge image is one
//! line and the default icon, never a stalled or swollen tray.

use std::path::{Path, PathBuf};

use super::icon::{IconState, SIZE};

/// Largest icon file read, in bytes; icons are a few KiB.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// Largest width or height accepted, in pixels.
const MAX_SIDE: u32 = 4096;

/// The app's icon at `SIZE * SIZE`, straight (not premultiplied) RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIcon {
    rgba: Vec<u8>,
}

/// Why `--icon` cannot be shown; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AppIconError {
    #[error("--icon {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--icon {}: larger than {} MiB", path.display(), MAX_FILE / 1024 / 1024)]
    TooBig { path: PathBuf },
    #[error("--icon {}: not a PNG image ({source})", path.display())]
    Decode {
        path: PathBuf,
        source: png::DecodingError,
    },
    #[error("--icon {}: {width}x{height} pixels, at most {MAX_SIDE}x{MAX_SIDE}", path.display())]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
    },
}

impl AppIcon {
    /// Reads and scales the PNG at `path`.
    pub fn load(path: &Path) -> Result<Self, AppIconError> {
        use std::io::Read as _;
        let read = |source| AppIconError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(AppIconError::TooBig {
                path: path.to_owned(),
            });
        }
        Self::from_png(&bytes).map_err(|e| match e {
            Decoded::Png(source) => AppIconError::Decode {
                path: path.to_owned(),
                source,
            },
            Decoded::TooLarge(width, height) => AppIconError::TooLarge {
                path: path.to_owned(),
                width,
                height,
            },
        })
    }

    fn from_png(bytes: &[u8]) -> Result<Self, Decoded> {
        let mut decoder = png::Decoder::new(bytes);
        // Palette and low bit depths become 8-bit channels; tRNS becomes alpha.
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(Decoded::Png)?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(Decoded::TooLarge(width, height));
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).map_err(Decoded::Png)?;
        let rgba = to_rgba(&buf[..frame.buffer_size()], frame.color_type);
        Ok(Self {
            rgba: scale_to_tray(&rgba, frame.width, frame.height),
        })
    }

    /// The icon with a badge of `state`'s colour in its lower right corner.
    pub fn badged(&self, state: IconState) -> Vec<u8> {
        let mut out = self.rgba.clone();
        let [r, g, b] = state.color();
        let size = SIZE as f32;
        // A disc of a third of the icon with a white ring, so it reads on the
        // icon's own colours and on light and dark panels.
        let radius = size / 3.0 / 2.0 + 1.0;
        let center = size - radius - 0.5;
        for y in 0..SIZE {
            for x in 0..SIZE {
                let d = ((x as f32 - center).powi(2) + (y as f32 - center).powi(2)).sqrt();
                let coverage = (radius - d + 0.5).clamp(0.0, 1.0);
                if coverage == 0.0 {
                    continue;
                }
                let rgb = if d > radius - 1.5 {
                    [0xff, 0xff, 0xff]
                } else {
                    [r, g, b]
                };
                let i = ((y * SIZE + x) * 4) as usize;
                blend(&mut out[i..i + 4], rgb, coverage);
            }
        }
        out
    }
}

/// What decoding found wrong, before the path is known.
#[derive(Debug)]
enum Decoded {
    Png(png::DecodingError),
    TooLarge(u32, u32),
}

/// 8-bit pixels of any colour type as RGBA.
fn to_rgba(pixels: &[u8], color: png::ColorType) -> Vec<u8> {
    use png::ColorType::*;
    match color {
        Rgba => pixels.to_vec(),
        Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 0xff])
            .collect(),
        GrayscaleAlpha => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        // Grayscale; Indexed does not occur after `normalize_to_color8`.
        Grayscale | Indexed => pixels.iter().flat_map(|&v| [v, v, v, 0xff]).collect(),
    }
}

/// Fits a `width * height` RGBA image into `SIZE * SIZE`, centred, keeping
/// its proportions: each tray pixel is the alpha-weighted average of the
/// source pixels it covers (a box filter: a 256-pixel icon scaled down stays
/// smooth, a 16-pixel one is enlarged without blur being invented).
fn scale_to_tray(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
    let side = width.max(height) as f32;
    let scale = side / SIZE as f32;
    // The image's box inside the square, in tray pixels.
    let (w, h) = (width as f32 / scale, height as f32 / scale);
    let (left, top) = ((SIZE as f32 - w) / 2.0, (SIZE as f32 - h) / 2.0);
    let mut out = vec![0; (SIZE * SIZE * 4) as usize];
    for ty in 0..SIZE {
        for tx in 0..SIZE {
            // The source rectangle under this tray pixel.
            let x0 = ((tx as f32 - left) * scale).max(0.0);
            let x1 = ((tx as f32 + 1.0 - left) * scale).min(width as f32);
            let y0 = ((ty as f32 - top) * scale).max(0.0);
            let y1 = ((ty as f32 + 1.0 - top) * scale).min(height as f32);
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let mut sum = [0f32; 4];
            let mut weight = 0f32;
            let mut sy = y0.floor() as u32;
            while (sy as f32) < y1 {
                let wy = (y1.min(sy as f32 + 1.0) - y0.max(sy as f32)).max(0.0);
                let mut sx = x0.floor() as u32;
                while (sx as f32) < x1 {
                    let wx = (x1.min(sx as f32 + 1.0) - x0.max(sx as f32)).max(0.0);
                    let i = ((sy * width + sx) * 4) as usize;
                    let a = rgba[i + 3] as f32 / 255.0;
                    let k = wx * wy;
                    for c in 0..3 {
                        sum[c] += rgba[i + c] as f32 * a * k;
                    }
                    sum[3] += a * k;
                    weight += k;
                    sx += 1;
                }
                sy += 1;
            }
            let o = ((ty * SIZE + tx) * 4) as usize;
            if sum[3] > 0.0 {
                for c in 0..3 {
                    out[o + c] = (sum[c] / sum[3]).round().clamp(0.0, 255.0) as u8;
                }
                // The part of the pixel the image covers counts too.
                let covered = (x1 - x0) * (y1 - y0) / (scale * scale);
                out[o + 3] = (sum[3] / weight * covered * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Paints `rgb` over the straight-alpha pixel `px` at `coverage` (0..1).
fn blend(px: &mut [u8], rgb: [u8; 3], coverage: f32) {
    let below = px[3] as f32 / 255.0;
    let alpha = coverage + below * (1.0 - coverage);
    for c in 0..3 {
        let value = rgb[c] as f32 * coverage + px[c] as f32 * below * (1.0 - coverage);
        px[c] = (value / alpha).round().clamp(0.0, 255.0) as u8;
    }
    px[3] = (alpha * 255.0).round() as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        drop(writer);
        out
    }

    fn pixel(rgba: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * SIZE + x) * 4) as usize;
        [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
    }

    #[test]
    fn a_large_square_icon_is_scaled_to_the_tray_with_its_colours() {
        // 128x128: left half blue, right half yellow.
        let pixels: Vec<u8> = (0..128 * 128)
            .flat_map(|i| {
                if i % 128 < 64 {
                    [0, 0, 255]
                } else {
                    [255, 255, 0]
                }
            })
            .collect();
        let icon = AppIcon::from_png(&png(128, 128, png::ColorType::Rgb, &pixels)).unwrap();
        assert_eq!(icon.rgba.len(), (SIZE * SIZE * 4) as usize);
        assert_eq!(pixel(&icon.rgba, 2, 2), [0, 0, 255, 255]);
        assert_eq!(pixel(&icon.rgba, 29, 2), [255, 255, 0, 255]);
    }

    #[test]
    fn a_wide_icon_keeps_its_proportions_with_transparent_bands() {
        let pixels = vec![200u8; 64 * 16];
        let icon = AppIcon::from_png(&png(64, 16, png::ColorType::Grayscale, &pixels)).unwrap();
        assert_eq!(pixel(&icon.rgba, 16, 0)[3], 0, "above the image");
        assert_eq!(pixel(&icon.rgba, 16, 16), [200, 200, 200, 255]);
        assert_eq!(pixel(&icon.rgba, 16, 31)[3], 0, "below the image");
    }

    #[test]
    fn the_badge_shows_the_state_over_the_icon_and_leaves_the_rest() {
        let pixels = vec![0u8; 32 * 32 * 4]; // fully transparent
        let icon = AppIcon::from_png(&png(32, 32, png::ColorType::Rgba, &pixels)).unwrap();
        for state in [IconState::Idle, IconState::Running, IconState::Failing] {
            let badged = icon.badged(state);
            let [r, g, b] = state.color();
            assert_eq!(
                pixel(&badged, SIZE - 7, SIZE - 7),
                [r, g, b, 255],
                "{state:?}"
            );
            assert_eq!(pixel(&badged, 4, 4), [0, 0, 0, 0], "the icon itself");
        }
        assert_ne!(
            icon.badged(IconState::Running),
            icon.badged(IconState::Failing)
        );
    }

    #[test]
    fn a_file_that_is_no_png_or_too_large_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("icon.png");
        std::fs::write(&text, "not an image").unwrap();
        let e = AppIcon::load(&text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--icon {}: not a PNG image", text.display())),
            "{e}"
        );
        assert!(!e.contains('\n'));

        let missing = dir.path().join("missing.png");
        let e = AppIcon::load(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--icon {}: ", missing.display())),
            "{e}"
        );

        let huge = dir.path().join("huge.png");
        std::fs::write(&huge, png(5000, 1, png::ColorType::Grayscale, &[0; 5000])).unwrap();
        let e = AppIcon::load(&huge).unwrap_err().to_string();
        assert!(e.ends_with("5000x1 pixels, at most 4096x4096"), "{e}");
    }
}
