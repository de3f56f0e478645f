//! PNG plots next to the JSON report: line charts drawn with `plotters` into an RGB buffer
//! (its bitmap backend, text from the DejaVu Sans Mono font committed under `bench/fonts`, so
//! no system font library is needed) and encoded with the `png` crate.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use anyhow::Context as _;
use plotters::prelude::*;

/// Width and height of every plot, pixels.
const SIZE: (u32, u32) = (1000, 600);
/// The font every text is drawn in (see `bench/fonts/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSansMono.ttf");
/// The family name it is registered under.
const FAMILY: &str = "sans-serif";

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend.
    pub name: String,
    /// (x, y) points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Chart<'a> {
    /// The title above it.
    pub title: &'a str,
    /// What x is.
    pub x_label: &'a str,
    /// What y is.
    pub y_label: &'a str,
    /// The lines.
    pub series: Vec<Series>,
}

fn register_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| anyhow::anyhow!("the committed font is not a valid TrueType font"));
    });
    result
}

/// The smallest and largest value of `values`, widened so the range is never empty.
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let lo = lo.min(0.0);
    if hi <= lo {
        lo..lo + 1.0
    } else {
        lo..hi * 1.05
    }
}

/// Draws `chart` as an RGB image: SIZE.0 × SIZE.1 × 3 bytes.
pub fn render(chart: &Chart) -> anyhow::Result<Vec<u8>> {
    register_font()?;
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let points = || chart.series.iter().flat_map(|s| s.points.iter());
        let xs = range(points().map(|p| p.0));
        let ys = range(points().map(|p| p.1));
        let mut ctx = ChartBuilder::on(&root)
            .caption(chart.title, (FAMILY, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(xs, ys)
            .map_err(draw_error)?;
        ctx.configure_mesh()
            .x_desc(chart.x_label)
            .y_desc(chart.y_label)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 16))
            .draw()
            .map_err(draw_error)?;
        for (i, series) in chart.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            ctx.draw_series(LineSeries::new(
                series.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(draw_error)?
            .label(series.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        ctx.configure_series_labels()
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(pixels)
}

fn draw_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// Draws `chart` into the PNG file `path`.
pub fn write(path: &Path, chart: &Chart) -> anyhow::Result<()> {
    let pixels = render(chart)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("writing {}", path.display()))?;
    writer
        .write_image_data(&pixels)
        .with_context(|| format!("writing {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Objects done over time: a step up at each completion (`at`, seconds from the start).
pub fn cumulative(name: &str, at: &[Duration]) -> Series {
    let mut sorted: Vec<f64> = at.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    let mut points = vec![(0.0, 0.0)];
    points.extend(sorted.iter().enumerate().map(|(i, t)| (*t, (i + 1) as f64)));
    Series {
        name: name.to_owned(),
        points,
    }
}

/// The distribution of latency `samples`: for each sample in ms, the share (percent) of
/// samples at or below it.
pub fn distribution(name: &str, samples: &[Duration]) -> Series {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len() as f64;
    Series {
        name: name.to_owned(),
        points: ms
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, (i + 1) as f64 * 100.0 / n))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_written_as_a_valid_png_of_the_plot_size_with_a_line_drawn() {
        let dir = std::env::temp_dir().join(format!("kuvert-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        let chart = Chart {
            title: "Ready over time",
            x_label: "s",
            y_label: "objects",
            series: vec![cumulative(
                "kuvert",
                &[Duration::from_millis(100), Duration::from_millis(300)],
            )],
        };
        write(&path, &chart).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (SIZE.0, SIZE.1, png::ColorType::Rgb)
        );
        // The first series' colour appears: the line (and its legend) were drawn.
        let color = Palette99::pick(0).to_rgba();
        let drawn = buf
            .chunks(3)
            .filter(|p| p == &[color.0, color.1, color.2])
            .count();
        assert!(drawn > 100, "{drawn} pixels of the line's colour");
    }

    #[test]
    fn cumulative_steps_up_by_one_per_completion_in_time_order() {
        let s = cumulative("x", &[Duration::from_secs(2), Duration::from_secs(1)]);
        assert_eq!(s.points, vec![(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]);
    }

    #[test]
    fn distribution_gives_each_sample_its_cumulative_share() {
        let s = distribution(
            "p2",
            &[
                Duration::from_millis(30),
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(40),
            ],
        );
        assert_eq!(
            s.points,
            vec![(10.0, 25.0), (20.0, 50.0), (30.0, 75.0), (40.0, 100.0)]
        );
    }

    #[test]
    fn an_empty_range_is_widened() {
        assert_eq!(range([].into_iter()), 0.0..1.0);
        assert_eq!(range([0.0, 0.0].into_iter()), 0.0..1.0);
        assert_eq!(range([1.0, 2.0].into_iter()), 0.0..2.1);
    }
}
