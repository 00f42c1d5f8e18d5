//! A minimal PNG plotter for the examples: scatter plots, line plots and image grids, with a
//! frame, zero lines and numeric tick labels (a 3x5 pixel font). Files are written to a
//! temporary name and renamed, so an interrupted run never leaves a truncated picture.
#![allow(dead_code)]

use std::io::BufWriter;
use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const BLUE: Rgb = [31, 119, 180];
pub const ORANGE: Rgb = [255, 127, 14];
pub const GREEN: Rgb = [44, 160, 44];
pub const RED: Rgb = [214, 39, 40];
pub const GREY: Rgb = [160, 160, 160];
pub const BLACK: Rgb = [0, 0, 0];

/// Ten distinguishable colours (for digit classes).
pub const TAB10: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// An RGB image.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Writes the image as PNG via a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("png.tmp");
        let write = || -> Result<(), Box<dyn std::error::Error>> {
            let file = std::fs::File::create(&tmp)?;
            let mut enc =
                png::Encoder::new(BufWriter::new(file), self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header()?;
            w.write_image_data(&self.pixels)?;
            w.finish()?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Pastes a grey-level image (values in [0, 1], row-major) at (x0, y0), scaled by `zoom`.
    pub fn paste_grey(
        &mut self,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
        values: &[f32],
        zoom: usize,
    ) {
        for r in 0..h {
            for c in 0..w {
                let v = 255 - (values[r * w + c].clamp(0.0, 1.0) * 255.0).round() as u8;
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        self.set(
                            (x0 + c * zoom + dx) as i64,
                            (y0 + r * zoom + dy) as i64,
                            [v, v, v],
                        );
                    }
                }
            }
        }
    }

    /// Draws `text` (digits, '-', '.', 'e', '+') with the 3x5 font, scaled by `scale`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: i64) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.set(
                                    x + (k as i64 * 4 + col) * scale + dx,
                                    y + row as i64 * scale + dy,
                                    c,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn glyph(ch: char) -> [u8; 5] {
    match ch {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        'e' => [0b000, 0b111, 0b111, 0b100, 0b111],
        _ => [0; 5],
    }
}

/// A plot panel: data coordinates mapped onto a rectangle of an image.
pub struct Panel {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
    pub xlim: (f64, f64),
    pub ylim: (f64, f64),
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-2 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Panel {
    pub fn new(
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
        xlim: (f64, f64),
        ylim: (f64, f64),
    ) -> Self {
        Self {
            x0,
            y0,
            w,
            h,
            xlim,
            ylim,
        }
    }

    /// Limits covering `values` with a 5% margin.
    pub fn limits(values: impl Iterator<Item = f64>) -> (f64, f64) {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return (-1.0, 1.0);
        }
        let pad = ((hi - lo) * 0.05).max(1e-9);
        (lo - pad, hi + pad)
    }

    pub fn to_px(&self, x: f64, y: f64) -> (i64, i64) {
        let px = self.x0 as f64 + (x - self.xlim.0) / (self.xlim.1 - self.xlim.0) * self.w as f64;
        let py = self.y0 as f64
            + (1.0 - (y - self.ylim.0) / (self.ylim.1 - self.ylim.0)) * self.h as f64;
        (px.round() as i64, py.round() as i64)
    }

    /// Frame, zero lines and tick labels at the limits.
    pub fn axes(&self, img: &mut Image) {
        let (x1, y1) = ((self.x0 + self.w) as i64, (self.y0 + self.h) as i64);
        for x in self.x0 as i64..=x1 {
            img.set(x, self.y0 as i64, BLACK);
            img.set(x, y1, BLACK);
        }
        for y in self.y0 as i64..=y1 {
            img.set(self.x0 as i64, y, BLACK);
            img.set(x1, y, BLACK);
        }
        if self.xlim.0 < 0.0 && self.xlim.1 > 0.0 {
            let (zx, _) = self.to_px(0.0, 0.0);
            for y in (self.y0 as i64..y1).step_by(3) {
                img.set(zx, y, GREY);
            }
        }
        if self.ylim.0 < 0.0 && self.ylim.1 > 0.0 {
            let (_, zy) = self.to_px(0.0, 0.0);
            for x in (self.x0 as i64..x1).step_by(3) {
                img.set(x, zy, GREY);
            }
        }
        img.text(self.x0 as i64, y1 + 4, &fmt_tick(self.xlim.0), BLACK, 2);
        let right = fmt_tick(self.xlim.1);
        img.text(x1 - right.len() as i64 * 8, y1 + 4, &right, BLACK, 2);
        let top = fmt_tick(self.ylim.1);
        img.text(
            self.x0 as i64 - 4 - top.len() as i64 * 8,
            self.y0 as i64,
            &top,
            BLACK,
            2,
        );
        let bottom = fmt_tick(self.ylim.0);
        img.text(
            self.x0 as i64 - 4 - bottom.len() as i64 * 8,
            y1 - 10,
            &bottom,
            BLACK,
            2,
        );
    }

    pub fn scatter(&self, img: &mut Image, points: &[(f64, f64)], c: Rgb, radius: i64) {
        for &(x, y) in points {
            let (px, py) = self.to_px(x, y);
            for dy in -radius..=radius {
                for dx in -radius..=radius {
                    if dx * dx + dy * dy <= radius * radius {
                        img.set(px + dx, py + dy, c);
                    }
                }
            }
        }
    }

    pub fn line(&self, img: &mut Image, points: &[(f64, f64)], c: Rgb) {
        for pair in points.windows(2) {
            let (a, b) = (
                self.to_px(pair[0].0, pair[0].1),
                self.to_px(pair[1].0, pair[1].1),
            );
            let n = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
            for i in 0..=n {
                let t = i as f64 / n as f64;
                let x = a.0 as f64 + t * (b.0 - a.0) as f64;
                let y = a.1 as f64 + t * (b.1 - a.1) as f64;
                img.set(x.round() as i64, y.round() as i64, c);
                img.set(x.round() as i64, y.round() as i64 + 1, c);
            }
        }
    }
}
