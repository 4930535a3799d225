//! Perceptual colour maps for heatmaps and activations, as polynomial fits so the same
//! formulas can be written in WGSL later without lookup textures.

/// The colour maps cnnviz offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorMap {
    /// Perceptually uniform, colour-blind friendly (matplotlib's default).
    #[default]
    Viridis,
    /// High-contrast rainbow without jet's false bands (Google's Turbo).
    Turbo,
}

/// Polynomial coefficients, constant term first, each `[r, g, b]`. The shaders evaluate
/// the same tables (uploaded by the scene renderer), so CPU and GPU colours agree.
const VIRIDIS: [[f32; 3]; 7] = [
    [0.277_727_34, 0.005_407_34, 0.334_099_8],
    [0.105_093_04, 1.404_613_5, 1.384_590_1],
    [-0.330_861_84, 0.214_847_56, 0.095_095_16],
    [-4.634_230_6, -5.799_101, -19.332_441],
    [6.228_27, 14.179_933, 56.690_55],
    [4.776_385, -13.745_145, -65.353_035],
    [-5.435_456, 4.645_852_6, 26.312_435],
];
const TURBO: [[f32; 3]; 7] = [
    [0.135_721_39, 0.091_402_61, 0.106_673_3],
    [4.615_392_7, 2.194_188_4, 12.641_946],
    [-42.660_324, 4.842_966_6, -60.582_047],
    [132.131_09, -14.185_033, 110.362_77],
    [-152.942_4, 4.277_298_5, -89.903_11],
    [59.286_38, 2.829_566, 27.348_25],
    [0.0, 0.0, 0.0],
];

impl ColorMap {
    /// The polynomial's coefficients, constant term first, each `[r, g, b]`.
    pub fn coefficients(self) -> &'static [[f32; 3]; 7] {
        match self {
            ColorMap::Viridis => &VIRIDIS,
            ColorMap::Turbo => &TURBO,
        }
    }

    /// RGB in 0..1 for `t` in 0..1 (clamped).
    pub fn rgb(self, t: f32) -> [f32; 3] {
        let t = t.clamp(0.0, 1.0);
        let c = self.coefficients();
        [0, 1, 2].map(|ch| {
            c.iter()
                .rev()
                .fold(0.0f32, |acc, k| acc * t + k[ch])
                .clamp(0.0, 1.0)
        })
    }

    /// 8-bit RGB.
    pub fn rgb8(self, t: f32) -> [u8; 3] {
        self.rgb(t).map(|c| (c * 255.0).round() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_runs_dark_purple_to_yellow() {
        let lo = ColorMap::Viridis.rgb8(0.0);
        let hi = ColorMap::Viridis.rgb8(1.0);
        // matplotlib's viridis: #440154 at 0, #fde725 at 1.
        for (got, want) in lo
            .iter()
            .zip([0x44, 0x01, 0x54])
            .chain(hi.iter().zip([0xfd, 0xe7, 0x25]))
        {
            assert!((*got as i32 - want).abs() <= 6, "{lo:?} {hi:?}");
        }
    }

    #[test]
    fn turbo_is_blue_at_low_and_red_at_high() {
        let [r0, _, b0] = ColorMap::Turbo.rgb(0.1);
        let [r1, _, b1] = ColorMap::Turbo.rgb(0.95);
        assert!(b0 > r0 && r1 > b1);
    }
}
