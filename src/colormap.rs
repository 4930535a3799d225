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

impl ColorMap {
    /// RGB in 0..1 for `t` in 0..1 (clamped).
    pub fn rgb(self, t: f32) -> [f32; 3] {
        let t = t.clamp(0.0, 1.0) as f64;
        let poly = |c: &[f64]| {
            c.iter()
                .rev()
                .fold(0.0, |acc, &k| acc * t + k)
                .clamp(0.0, 1.0) as f32
        };
        match self {
            ColorMap::Viridis => [
                poly(&[
                    0.277_727_33,
                    0.105_093_04,
                    -0.330_861_83,
                    -4.634_230_5,
                    6.228_269_9,
                    4.776_385,
                    -5.435_455_9,
                ]),
                poly(&[
                    0.005_407_34,
                    1.404_613_5,
                    0.214_847_56,
                    -5.799_101,
                    14.179_933,
                    -13.745_145,
                    4.645_852_6,
                ]),
                poly(&[
                    0.334_099_8,
                    1.384_590_2,
                    0.095_095_16,
                    -19.332_441,
                    56.690_553,
                    -65.353_033,
                    26.312_435,
                ]),
            ],
            ColorMap::Turbo => [
                poly(&[
                    0.135_721_38,
                    4.615_392_6,
                    -42.660_322_6,
                    132.131_082_3,
                    -152.942_394,
                    59.286_379_4,
                ]),
                poly(&[
                    0.091_402_61,
                    2.194_188_4,
                    4.842_966_6,
                    -14.185_033_3,
                    4.277_298_6,
                    2.829_566,
                ]),
                poly(&[
                    0.106_673_3,
                    12.641_946,
                    -60.582_048,
                    110.362_768,
                    -89.903_109,
                    27.348_25,
                ]),
            ],
        }
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
