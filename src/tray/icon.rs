//! The tray icon, drawn in code: a 32x32 RGBA disc whose colour is the
//! aggregate state. Drawing avoids shipping PNGs and a decoder dependency
//! (tray-icon encodes the RGBA itself when it hands the icon to the panel).

/// What the icon says about all backends together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    /// Nothing runs (and nothing is wrong).
    Idle,
    /// At least one backend runs (or starts/stops) and nothing is wrong.
    Running,
    /// Something failed, crashed, is restarting after a crash, cannot be
    /// found, does not match its checksum, or a manifest is invalid.
    Failing,
}

/// Width and height of the drawn icon, in pixels.
pub const SIZE: u32 = 32;

impl IconState {
    /// The fill colour, RGB.
    pub fn color(self) -> [u8; 3] {
        match self {
            Self::Idle => [0x8a, 0x8f, 0x98],
            Self::Running => [0x2e, 0xa0, 0x43],
            Self::Failing => [0xd7, 0x3a, 0x49],
        }
    }

    /// `SIZE * SIZE` RGBA pixels: a disc with a soft (anti-aliased) edge, a
    /// darker rim and a white hub, so it reads on light and dark panels.
    pub fn rgba(self) -> Vec<u8> {
        self.rgba_sized(SIZE)
    }

    /// The same drawing at `size * size` pixels (the application icon is the
    /// idle disc at the hicolor sizes); rim and hub scale with it.
    pub fn rgba_sized(self, size: u32) -> Vec<u8> {
        let [r, g, b] = self.color();
        let rim = [r / 2, g / 2, b / 2];
        let scale = size as f32 / SIZE as f32;
        let center = (size as f32 - 1.0) / 2.0;
        let outer = size as f32 / 2.0 - scale;
        let mut out = Vec::with_capacity((size * size * 4) as usize);
        for y in 0..size {
            for x in 0..size {
                let d = ((x as f32 - center).powi(2) + (y as f32 - center).powi(2)).sqrt();
                // Coverage of the pixel by the disc, for a 1-pixel soft edge.
                let alpha = (outer - d + 0.5).clamp(0.0, 1.0);
                let rgb = if d > outer - 2.0 * scale {
                    rim
                } else if d < 4.5 * scale {
                    [0xff, 0xff, 0xff]
                } else {
                    [r, g, b]
                };
                out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], (alpha * 255.0).round() as u8]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(rgba: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * SIZE + x) * 4) as usize;
        [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
    }

    #[test]
    fn the_disc_is_coloured_by_state_with_transparent_corners() {
        for state in [IconState::Idle, IconState::Running, IconState::Failing] {
            let rgba = state.rgba();
            assert_eq!(rgba.len(), (SIZE * SIZE * 4) as usize);
            assert_eq!(pixel(&rgba, 0, 0)[3], 0, "corner is transparent");
            let [r, g, b] = state.color();
            assert_eq!(pixel(&rgba, 8, 16), [r, g, b, 255], "{state:?} body");
            assert_eq!(pixel(&rgba, 16, 16), [255, 255, 255, 255], "hub");
        }
        assert_ne!(IconState::Idle.rgba(), IconState::Failing.rgba());
    }

    #[test]
    fn the_drawing_scales_without_changing_the_tray_size() {
        assert_eq!(IconState::Idle.rgba_sized(SIZE), IconState::Idle.rgba());
        let big = IconState::Running.rgba_sized(256);
        assert_eq!(big.len(), 256 * 256 * 4);
        let at = |x: usize, y: usize| big[(y * 256 + x) * 4..(y * 256 + x) * 4 + 4].to_vec();
        assert_eq!(at(0, 0)[3], 0);
        assert_eq!(at(128, 128), vec![255, 255, 255, 255]);
        let [r, g, b] = IconState::Running.color();
        assert_eq!(at(64, 128), vec![r, g, b, 255]);
    }
}
