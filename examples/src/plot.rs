//! The examples' pictures as PNG files: charts drawn with `plotters` into an RGB buffer, and
//! grids of grey-level images. Files are written to a temporary name and renamed, so an
//! interrupted run never leaves a truncated picture.
//!
//! Chart text is set in DejaVu Sans, compiled into the programs from `examples/assets/` (its
//! licence, the Bitstream Vera licence with the DejaVu changes in the public domain, is
//! `examples/assets/DejaVuSans-LICENSE`), so charts need no system fonts.

use std::error::Error;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The font family charts name; [`render`] registers DejaVu Sans under it.
pub const FONT: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Ten distinguishable colours (matplotlib's `tab10`), for classes and series.
pub const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
pub const BLUE: RGBColor = TAB10[0];
pub const ORANGE: RGBColor = TAB10[1];
pub const GREEN: RGBColor = TAB10[2];
pub const RED: RGBColor = TAB10[3];

/// A chart's drawing area: the whole picture or a part of it, in pixels.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// What drawing a chart returns: `plotters`' errors, boxed.
pub type DrawResult = Result<(), Box<dyn Error>>;

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let registered = plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS);
        assert!(registered.is_ok(), "the bundled DejaVu Sans does not parse");
    });
}

/// Draws a `width × height` chart on a white background with `draw`; returns its RGB pixels,
/// row by row.
pub fn render(
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<Vec<u8>, Box<dyn Error>> {
    register_font();
    let mut pixels = vec![255; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    Ok(pixels)
}

/// Draws a `width × height` chart with `draw` (see [`render`]) and writes it to `path`.
pub fn save_chart(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<(), String> {
    let pixels = render(size, draw).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    write_png(path, size, &pixels)
}

/// Writes RGB `pixels` (row by row) as a PNG file via a temporary file and a rename.
fn write_png(path: &Path, (width, height): (u32, u32), pixels: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("png.tmp");
    let write = || -> Result<(), Box<dyn Error>> {
        let file = std::fs::File::create(&tmp)?;
        let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut w = enc.write_header()?;
        w.write_image_data(pixels)?;
        w.finish()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    };
    write().map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        format!("cannot write {}: {e}", path.display())
    })
}

/// How a legend marks its entries: a filled dot (scattered points) or a line (curves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Dot,
    Line,
}

/// A legend in an area of its own, beside the data: `title`, then one row per entry, its mark
/// in its colour and its label.
pub fn legend(area: &Area, title: &str, entries: &[(&str, RGBColor)], mark: Mark) -> DrawResult {
    let left = Pos::new(HPos::Left, VPos::Center);
    let font = |size: f64| TextStyle::from((FONT, size).into_font()).pos(left);
    area.draw(&Text::new(title, (8, 16), font(20.0)))?;
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = 46 + 26 * i as i32;
        match mark {
            Mark::Dot => area.draw(&Circle::new((20, y), 6, colour.filled()))?,
            Mark::Line => area.draw(&PathElement::new(
                vec![(8, y), (36, y)],
                colour.stroke_width(3),
            ))?,
        }
        area.draw(&Text::new(*label, (44, y), font(18.0)))?;
    }
    Ok(())
}

/// A scatter chart's frame on `area` in the examples' style: the caption, the x and y ranges
/// `lims`, tick labels by [`tick`], the axis descriptions `descs`, no minor grid lines.
pub fn scatter_frame<'a, 'b>(
    area: &'a Area<'b>,
    (caption, caption_size): (&str, u32),
    lims: ((f64, f64), (f64, f64)),
    descs: (&str, &str),
) -> Result<
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn Error>,
> {
    let ((x0, x1), (y0, y1)) = lims;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, caption_size))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(descs.0)
        .y_desc(descs.1)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    Ok(chart)
}

/// A tick label: three significant digits, without trailing zeros (`100000`, `2.5`, `0.05`).
pub fn tick(v: &f64) -> String {
    if *v == 0.0 || !v.is_finite() {
        return format!("{}", v.abs());
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Ticks of a log-scale axis over [lo, hi] (0 < lo < hi): the multiples 1…9, else 1, 2 and 5,
/// else 1 of the powers of ten there, whichever first gives at most `max` ticks.
pub fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
    let ticks = |multiples: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|k| multiples.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|t| (lo..=hi).contains(t))
            .collect()
    };
    let mut result = Vec::new();
    for multiples in [
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0],
    ] {
        result = ticks(multiples);
        if result.len() <= max {
            break;
        }
    }
    result
}

/// Limits covering the finite `values` with a 5% margin; (−1, 1) without any.
pub fn limits(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
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

/// A grid of grey-level images on a white RGB canvas.
pub struct Image {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Image {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    /// Pastes a `w × h` grey-level image (values in [0, 1], row-major, drawn dark on white)
    /// with its top left corner at (x0, y0), each value a `zoom × zoom` square; what falls
    /// outside the canvas is cut off.
    pub fn paste_grey(
        &mut self,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
        values: &[f32],
        zoom: usize,
    ) {
        for y in y0..(y0 + h * zoom).min(self.height) {
            for x in x0..(x0 + w * zoom).min(self.width) {
                let v = values[(y - y0) / zoom * w + (x - x0) / zoom];
                let level = 255 - (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                let i = (y * self.width + x) * 3;
                self.pixels[i..i + 3].fill(level);
            }
        }
    }

    /// Writes the picture to `path` as PNG (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_png(path, (self.width as u32, self.height as u32), &self.pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bp-plot-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The decoded RGB pixels and size of a PNG file.
    fn decode(path: &Path) -> (Vec<u8>, u32, u32) {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (buf, info.width, info.height)
    }

    fn pixel(rgb: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
        let i = (y * width + x) as usize * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    fn count(rgb: &[u8], keep: impl Fn([u8; 3]) -> bool) -> usize {
        rgb.chunks(3).filter(|p| keep([p[0], p[1], p[2]])).count()
    }

    /// Two curves with axis labels and `plotters`' legend, and the legend of [`legend`]
    /// beside them.
    fn draw_test_chart(root: &Area) -> DrawResult {
        let (plot, side) = root.split_horizontally(480);
        let mut chart = ChartBuilder::on(&plot)
            .caption("A test chart", (FONT, 24))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..10.0, 0.0..10.0)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .draw()?;
        chart
            .draw_series(LineSeries::new((0..=10).map(|i| (i as f64, i as f64)), RED))?
            .label("rising")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .draw_series(LineSeries::new(
                (0..=10).map(|i| (i as f64, 10.0 - i as f64)),
                BLUE,
            ))?
            .label("falling")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .label_font((FONT, 16))
            .draw()?;
        legend(&side, "class", &[("a", GREEN), ("b", ORANGE)], Mark::Dot)
    }

    #[test]
    fn a_chart_with_a_legend_renders_to_a_png_of_its_size() {
        let dir = temp_dir("chart");
        let path = dir.join("chart.png");
        save_chart(&path, (640, 400), draw_test_chart).unwrap();
        assert!(
            !dir.join("chart.png.tmp").exists(),
            "the temporary file is renamed"
        );
        let (rgb, width, height) = decode(&path);
        assert_eq!((width, height), (640, 400));
        // Both curves and both dots of the side legend are drawn in their colours.
        for colour in [RED, BLUE, GREEN, ORANGE] {
            let n = count(&rgb, |p| p == [colour.0, colour.1, colour.2]);
            assert!(n > 20, "{colour:?}: {n} pixels");
        }
        // Text is set: the side legend's title and labels put dark anti-aliased pixels
        // right of its marks, where nothing else is drawn.
        let mut text = 0;
        for y in 0..120 {
            for x in 520..640 {
                let p = pixel(&rgb, width, x, y);
                text += usize::from(p[0] < 128 && p[0] == p[1] && p[1] == p[2]);
            }
        }
        assert!(text > 30, "{text} dark pixels of text in the side legend");
        // `plotters`' legend, right of the crossing: its border and labels.
        let series_legend = (160..230)
            .flat_map(|y| (380..470).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&rgb, width, x, y)[0] < 128)
            .count();
        assert!(
            series_legend > 100,
            "{series_legend} dark pixels of the series legend"
        );
        // The caption is set above the plot area, centred over it.
        let caption = (0..30)
            .flat_map(|y| (180..300).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&rgb, width, x, y)[0] < 128)
            .count();
        assert!(caption > 30, "{caption} dark pixels of the caption");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn chart_text_needs_no_system_font() {
        // Only the bundled font is registered, under the name charts use: drawing text in a
        // family nobody registered fails rather than falling back to something on the machine.
        let drawn = render((100, 50), |root| {
            root.draw(&Text::new("x", (10, 10), ("no-such-font", 12).into_font()))?;
            Ok(())
        });
        assert!(drawn.is_err(), "an unregistered font family drew text");
        render((100, 50), |root| {
            root.draw(&Text::new("x", (10, 10), (FONT, 12).into_font()))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn tick_labels_are_short() {
        for (v, want) in [
            (100000.0, "100000"),
            (12345.0, "12345"),
            (2.5, "2.5"),
            (10.0, "10"),
            (-3.0, "-3"),
            (0.05, "0.05"),
            (0.15000000000000002, "0.15"),
            (0.1234, "0.123"),
            (0.0, "0"),
            (-0.0, "0"),
        ] {
            assert_eq!(tick(&v), want, "{v}");
        }
    }

    #[test]
    fn log_ticks_thin_out_over_many_decades() {
        assert_eq!(
            log_ticks(9500.0, 1.2e5, 12),
            [1e4, 2e4, 3e4, 4e4, 5e4, 6e4, 7e4, 8e4, 9e4, 1e5]
        );
        assert_eq!(
            log_ticks(0.9, 600.0, 12),
            [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        assert_eq!(
            log_ticks(0.5, 2e7, 12),
            [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7]
        );
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let path = Path::new("/proc/version/chart.png");
        let e = save_chart(path, (64, 64), |root| {
            root.fill(&WHITE)?;
            Ok(())
        })
        .unwrap_err();
        assert!(e.contains("/proc/version/chart.png"), "{e}");
        let e = Image::new(28, 28).save(path).unwrap_err();
        assert!(e.contains("/proc/version/chart.png"), "{e}");
    }

    #[test]
    fn grey_images_are_pasted_at_their_place_and_zoom() {
        let dir = temp_dir("grid");
        let path = dir.join("grid.png");
        let mut img = Image::new(10, 6);
        // A 2 × 1 image, black then 50% grey, at (1, 2), twice the size.
        img.paste_grey(1, 2, 2, 1, &[1.0, 0.5], 2);
        // Cut off at the right edge.
        img.paste_grey(9, 0, 1, 1, &[1.0], 3);
        img.save(&path).unwrap();
        let (rgb, width, height) = decode(&path);
        assert_eq!((width, height), (10, 6));
        for (x, y, level) in [
            (1, 2, 0),
            (2, 3, 0),
            (3, 2, 127),
            (4, 3, 127),
            (5, 2, 255),
            (0, 2, 255),
            (1, 4, 255),
            (9, 0, 0),
            (9, 2, 0),
            (8, 0, 255),
        ] {
            assert_eq!(pixel(&rgb, width, x, y), [level; 3], "({x}, {y})");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
