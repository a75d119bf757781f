//! `plot`: draws chatbench results as a PNG chart.
//!
//! Reads a JSON-lines file, one `chatbench --json` object per line (blank
//! lines and lines starting with `#` are skipped), and draws the latency
//! percentiles (p50, p90, p99, max; log scale) and the delivery rate against
//! the number of clients or the offered load:
//!
//! ```text
//! cargo run --release -p chatbench --bin plot -- \
//!     --input results.jsonl --x clients --output docs/clients.png --title "..."
//! ```
//!
//! Text is rendered with a TrueType font loaded at run time (no fontconfig):
//! `--font PATH`, or the first of a list of well-known system paths.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde_json::Value;

/// Well-known locations of a regular sans-serif TTF, tried in order.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/google-noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/local/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The family name plotters looks fonts up by.
const FAMILY: &str = "sans-serif";

/// Draws chatbench JSON-lines results as a PNG chart.
#[derive(Debug, Parser)]
#[command(name = "plot", version)]
struct Args {
    /// JSON-lines file, one `chatbench --json` object per line
    #[arg(long)]
    input: PathBuf,
    /// X axis: number of clients, or offered load (offered_per_s if every
    /// row has it, else deliveries_per_s)
    #[arg(long, value_enum)]
    x: XKey,
    /// PNG file to write
    #[arg(long)]
    output: PathBuf,
    /// Chart title
    #[arg(long)]
    title: String,
    /// TrueType/OpenType font to render text with (default: first found of
    /// a list of well-known system fonts, e.g. DejaVuSans.ttf)
    #[arg(long)]
    font: Option<PathBuf>,
    /// Image width in pixels
    #[arg(long, default_value_t = 1000)]
    width: u32,
    /// Image height in pixels
    #[arg(long, default_value_t = 700)]
    height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum XKey {
    Clients,
    Offered,
}

/// The figures of one run that the chart uses.
#[derive(Debug, Clone)]
struct Row {
    clients: f64,
    offered: Option<f64>,
    rate: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if !(200..=10_000).contains(&args.width) || !(200..=10_000).contains(&args.height) {
        bail!("--width and --height must be between 200 and 10000 pixels");
    }
    let is_png = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        bail!("--output must name a .png file: {}", args.output.display());
    }
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("output directory {} does not exist", dir.display());
    }

    let rows = read_rows(&args.input)?;
    let font = load_font(args.font.as_deref())?;
    let (points, x_desc) = series_x(&rows, args.x);
    draw(&args, &points, &x_desc)?;
    println!(
        "wrote {} ({} runs, font {})",
        args.output.display(),
        points.len(),
        font.display()
    );
    Ok(())
}

/// Parses the JSON-lines input.
fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = parse_row(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("{} holds no result rows", path.display());
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Result<Row> {
    let v: Value = serde_json::from_str(line).context("invalid JSON")?;
    if !v.is_object() {
        bail!("not a JSON object");
    }
    let num = |v: &Value, key: &str| -> Result<f64> {
        let x = v
            .get(key)
            .ok_or_else(|| anyhow!("missing key {key:?}"))?
            .as_f64()
            .ok_or_else(|| anyhow!("key {key:?} is not a number"))?;
        if !x.is_finite() {
            bail!("key {key:?} is not finite");
        }
        Ok(x)
    };
    let lat = v
        .get("latency_ms")
        .ok_or_else(|| anyhow!("missing key \"latency_ms\""))?;
    let offered = match v.get("offered_per_s") {
        None | Some(Value::Null) => None,
        Some(_) => Some(num(&v, "offered_per_s")?),
    };
    Ok(Row {
        clients: num(&v, "clients")?,
        offered,
        rate: num(&v, "deliveries_per_s")?,
        p50: num(lat, "p50").context("in latency_ms")?,
        p90: num(lat, "p90").context("in latency_ms")?,
        p99: num(lat, "p99").context("in latency_ms")?,
        max: num(lat, "max").context("in latency_ms")?,
    })
}

/// Registers the font plotters renders all text with; returns its path.
fn load_font(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => {
            if !p.is_file() {
                bail!("font {} not found", p.display());
            }
            p.to_path_buf()
        }
        None => FONT_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "no TrueType font found (tried {}); pass one with --font PATH",
                    FONT_PATHS.join(", ")
                )
            })?,
    };
    let bytes = fs::read(&path).with_context(|| format!("cannot read font {}", path.display()))?;
    // plotters keeps the font for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType/OpenType font", path.display()))?;
    Ok(path)
}

/// Picks the x value of every row, sorted by x; returns the axis label too.
fn series_x(rows: &[Row], key: XKey) -> (Vec<(f64, Row)>, String) {
    let (desc, pick): (String, Pick) = match key {
        XKey::Clients => ("clients".into(), |r| r.clients),
        XKey::Offered if rows.iter().all(|r| r.offered.is_some()) => {
            ("offered load (offered_per_s, /s)".into(), |r| {
                r.offered.unwrap_or(r.rate)
            })
        }
        XKey::Offered => {
            if rows.iter().any(|r| r.offered.is_some()) {
                eprintln!(
                    "warning: offered_per_s is missing from some rows; \
                     using deliveries_per_s for every row"
                );
            }
            ("load (deliveries_per_s, /s)".into(), |r| r.rate)
        }
    };
    let mut points: Vec<(f64, Row)> = rows.iter().map(|r| (pick(r), r.clone())).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    (points, desc)
}

fn draw(args: &Args, points: &[(f64, Row)], x_desc: &str) -> Result<()> {
    let (x_lo, x_hi) = min_max(points.iter().map(|p| p.0)).context("no x values")?;
    let latencies = points
        .iter()
        .flat_map(|(_, r)| [r.p50, r.p90, r.p99, r.max])
        .filter(|v| *v > 0.0);
    let (y_lo, y_hi) = min_max(latencies).context("no positive latency to plot")?;
    let lat_range = (y_lo / 1.6)..(y_hi * 1.6);

    let root = BitMapBackend::new(&args.output, (args.width, args.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.margin(6, 0, 0, 0).titled(&args.title, (FAMILY, 26))?;
    let upper_h = (body.dim_in_pixel().1 as f64 * 0.62) as i32;
    let (upper, lower) = body.split_vertically(upper_h);

    if x_lo > 0.0 && x_hi / x_lo > 20.0 {
        let (lo, hi) = (x_lo / 1.15, x_hi * 1.15);
        let (bold, light) = log_ticks(lo, hi, 12);
        let x = || {
            (lo..hi)
                .log_scale()
                .with_key_points(bold.clone())
                .with_light_points(light.clone())
        };
        latency_chart(&upper, x(), lat_range, points, x_desc)?;
        rate_chart(&lower, x(), points, x_desc)?;
    } else {
        let pad = if x_hi > x_lo {
            (x_hi - x_lo) * 0.05
        } else {
            (x_lo.abs() * 0.1).max(1.0)
        };
        let lo = if x_lo >= 0.0 {
            (x_lo - pad).max(0.0)
        } else {
            x_lo - pad
        };
        let x = || lo..(x_hi + pad);
        latency_chart(&upper, x(), lat_range, points, x_desc)?;
        rate_chart(&lower, x(), points, x_desc)?;
    }
    root.present()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(())
}

/// Picks one figure out of a row.
type Pick = fn(&Row) -> f64;

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Upper chart: latency percentiles, log-scale y.
fn latency_chart<X>(
    area: &Area<'_>,
    x: X,
    y: std::ops::Range<f64>,
    points: &[(f64, Row)],
    x_desc: &str,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let (bold, light) = log_ticks(y.start, y.end, 8);
    let y_axis = y.log_scale().with_key_points(bold).with_light_points(light);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y_axis)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|v| pretty(*v))
        .y_label_formatter(&|v| pretty(*v))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;

    let series: [(&str, Pick, RGBColor); 4] = [
        ("p50", |r| r.p50, RGBColor(0x1f, 0x77, 0xb4)),
        ("p90", |r| r.p90, RGBColor(0x2c, 0xa0, 0x2c)),
        ("p99", |r| r.p99, RGBColor(0xff, 0x7f, 0x0e)),
        ("max", |r| r.max, RGBColor(0xd6, 0x27, 0x28)),
    ];
    for (name, pick, color) in series {
        // A log axis cannot show 0 ms: leave such points out.
        let data: Vec<(f64, f64)> = points
            .iter()
            .map(|(x, r)| (*x, pick(r)))
            .filter(|p| p.1 > 0.0)
            .collect();
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)).point_size(4))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 15))
        .draw()?;
    Ok(())
}

/// Lower chart: deliveries per second, linear y from 0.
fn rate_chart<X>(area: &Area<'_>, x: X, points: &[(f64, Row)], x_desc: &str) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let top = points.iter().map(|(_, r)| r.rate).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("deliveries / s")
        .x_label_formatter(&|v| pretty(*v))
        .y_label_formatter(&|v| pretty(*v))
        .y_labels(6)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    let color = RGBColor(0x94, 0x67, 0xbd);
    chart
        .draw_series(
            LineSeries::new(
                points.iter().map(|(x, r)| (*x, r.rate)),
                color.stroke_width(2),
            )
            .point_size(4),
        )?
        .label("deliveries_per_s")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 15))
        .draw()?;
    Ok(())
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Short tick labels: 0.05, 2.5, 800, 12k, 1.5M.
fn pretty(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6, 2))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3, 1))
    } else if a >= 1.0 {
        trim(v, 2)
    } else {
        let decimals = (-a.log10()).ceil() as usize + 1;
        trim(v, decimals.min(9))
    }
}

/// Tick marks for a log axis over `lo..hi`: labelled (bold) marks at 1, 2
/// and 5 times each power of ten, or at powers of ten only when that would
/// make more than `max_labels`; unlabelled (light) marks at 1..9 times each.
fn log_ticks(lo: f64, hi: f64, max_labels: usize) -> (Vec<f64>, Vec<f64>) {
    let first = lo.log10().floor() as i32;
    let last = hi.log10().ceil() as i32;
    let marks = |mantissas: &[f64]| -> Vec<f64> {
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let mut bold = marks(&[1.0, 2.0, 5.0]);
    if bold.len() > max_labels {
        bold = marks(&[1.0]);
    }
    let light = marks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    (bold, light)
}

fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
