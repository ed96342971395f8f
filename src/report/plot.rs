//! PNG figures (plotters, bitmap backend, DejaVu Sans shipped in
//! `assets/fonts` so no system font library is needed).
//!
//! Three kinds: curves on a log-scale y axis (loss and error against
//! iteration or wall time, several runs on one plot), the spectral
//! signature of one natural-gradient step (singular values, RCE curve,
//! precision level and cutoff ranks), and heat maps of a field on a tensor
//! grid (solution, reference, pointwise error).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

static FONT: Once = Once::new();

fn ensure_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .unwrap_or_else(|_| unreachable!("the shipped font parses"));
    });
}

const FONT_FAMILY: &str = "sans-serif";

/// Distinct line colours (the "tab10" palette).
const COLORS: [RGBColor; 10] = [
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

/// The colour of the `k`-th series.
fn color(k: usize) -> RGBColor {
    COLORS[k % COLORS.len()]
}

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Plot {
        path: path.display().to_string(),
        reason,
    }
}

/// One named curve.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points; those with `y ≤ 0` or not finite are skipped on a log axis.
    pub points: Vec<(f64, f64)>,
    /// A second curve drawn dashed in the same colour (e.g. the held-out
    /// loss beside the training loss), with its legend text.
    pub companion: Option<(String, Vec<(f64, f64)>)>,
}

/// A line plot with a logarithmic y axis.
#[derive(Clone, Debug)]
pub struct LogPlot {
    /// Caption.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(y, label)`, dashed.
    pub hlines: Vec<(f64, String)>,
    /// Vertical reference lines `(x, label)`, dashed.
    pub vlines: Vec<(f64, String)>,
    /// Logarithmic x axis (points with `x ≤ 0` are skipped).
    pub log_x: bool,
}

/// The y axis of a log plot, in decades: `lo..hi` (exponents of ten) with
/// a tick every `step` decades, lo and hi on ticks. The bounds lie strictly
/// beyond the positive finite values in `ys` (a value that is itself a
/// power of ten gets the next decade), so no extreme sits on an axis and a
/// labelled tick lies beyond each; the step (1, 2, 5, 10, 20, … decades)
/// keeps at most 11 ticks.
fn log_axis(ys: impl Iterator<Item = f64>) -> Option<(i32, i32, i32)> {
    let (min, max) = ys
        .filter(|y| y.is_finite() && *y > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    if !min.is_finite() {
        return None;
    }
    let lo = min.log10().ceil() as i32 - 1;
    let hi = max.log10().floor() as i32 + 1;
    let step = [1, 2, 5, 10, 20, 50, 100]
        .into_iter()
        .find(|s| (hi - lo + s - 1) / s <= 10)
        .unwrap_or(200);
    Some((
        lo.div_euclid(step) * step,
        (hi + step - 1).div_euclid(step) * step,
        step,
    ))
}

/// `1e<k>` for a tick at exponent `k` of a log axis drawn in log10.
fn decade_label(v: &f64) -> String {
    format!("1e{}", v.round() as i64)
}

/// Tick labels of a linear axis spanning `span`: [`short_label`], with ticks
/// that differ from 0 by rounding only (`-2.2e-16` on an axis from -1 to 1)
/// labelled `0`.
fn linear_labels(span: f64) -> impl Fn(&f64) -> String {
    move |v: &f64| {
        if v.abs() <= 1e-9 * span.abs() {
            "0".to_string()
        } else {
            short_label(v)
        }
    }
}

fn short_label(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// `x` with two significant digits, without trailing zeros (log-axis tick labels).
fn two_digits(x: f64) -> String {
    if !(x.is_finite() && x > 0.0) {
        return format!("{x}");
    }
    if !(1e-4..1e5).contains(&x) {
        return format!("{x:.1e}");
    }
    let decimals = (1 - x.log10().floor() as i32).max(0) as usize;
    let t = format!("{x:.decimals$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// Every point a [`LogPlot`] draws, companions (the dashed held-out curves)
/// included: the axes span all of them.
fn plotted_points(plot: &LogPlot) -> impl Iterator<Item = &(f64, f64)> {
    plot.series.iter().flat_map(|s| {
        s.points
            .iter()
            .chain(s.companion.iter().flat_map(|(_, c)| c.iter()))
    })
}

/// Draw `plot` into the PNG `path` (`width × height` pixels).
pub fn log_plot(path: &Path, plot: &LogPlot, size: (u32, u32)) -> Result<()> {
    ensure_font();
    let err = plot_err(path);
    // A log x axis is drawn as a linear axis in log10 x, labelled with x.
    let fx = |x: f64| {
        if !plot.log_x {
            Some(x)
        } else if x > 0.0 {
            Some(x.log10())
        } else {
            None
        }
    };
    let pts = || plotted_points(plot);
    // The y axis is drawn linear in log10 y with ticks on whole decades.
    let (e0, e1, step) = log_axis(pts().map(|p| p.1).chain(plot.hlines.iter().map(|h| h.0)))
        .ok_or_else(|| err("no positive finite value to plot".into()))?;
    let (y0, y1) = (f64::from(e0), f64::from(e1));
    let ly = |y: f64| (y.is_finite() && y > 0.0).then(|| y.log10());
    let xs = pts()
        .map(|p| p.0)
        .chain(plot.vlines.iter().map(|v| v.0))
        .filter_map(fx)
        .filter(|x| x.is_finite());
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        return Err(err("no finite x value to plot".into()));
    }
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let linear = linear_labels(x1 - x0);
    let x_label = |v: &f64| {
        if plot.log_x {
            two_digits(10f64.powf(*v))
        } else {
            linear(v)
        }
    };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&plot.title, (FONT_FAMILY, 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(&plot.x_label)
        .y_desc(&plot.y_label)
        .label_style((FONT_FAMILY, 16))
        .axis_desc_style((FONT_FAMILY, 18))
        .y_labels(((e1 - e0) / step + 1) as usize)
        .y_label_formatter(&decade_label)
        .x_label_formatter(&x_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, s) in plot.series.iter().enumerate() {
        let c = color(k);
        let line: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(x, y)| Some((fx(x)?, ly(y)?)))
            .filter(|(x, _)| x.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        if let Some((label, points)) = &s.companion {
            let dashed: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|&(x, y)| Some((fx(x)?, ly(y)?)))
                .filter(|(x, _)| x.is_finite())
                .collect();
            if !dashed.is_empty() {
                let style = c.stroke_width(2);
                chart
                    .draw_series(DashedLineSeries::new(dashed, 6, 4, style))
                    .map_err(|e| err(e.to_string()))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 10, y)], c.stroke_width(3))
                    });
            }
        }
    }
    // Reference lines: horizontal ones black, vertical ones in the colours after the series'.
    let dash = |chart: &mut ChartContext<'_, _, _>,
                a: (f64, f64),
                b: (f64, f64),
                label: &str,
                c: RGBColor| {
        let style = c.mix(0.8).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![a, b], 7, 5, style))
            .map_err(|e| err(e.to_string()))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        Ok::<_, Error>(())
    };
    for (y, label) in &plot.hlines {
        if let Some(y) = ly(*y) {
            dash(&mut chart, (x0, y), (x1, y), label, BLACK)?;
        }
    }
    for (k, (x, label)) in plot.vlines.iter().enumerate() {
        if let Some(x) = fx(*x) {
            dash(
                &mut chart,
                (x, y0),
                (x, y1),
                label,
                color(plot.series.len() + k),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT_FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// A scalar field on a tensor grid: `values[i·ny + j]` at `(xs[i], ys[j])`.
#[derive(Clone, Debug)]
pub struct Field {
    /// Panel caption.
    pub title: String,
    /// Horizontal axis name.
    pub x_name: String,
    /// Vertical axis name.
    pub y_name: String,
    /// Horizontal grid values (increasing).
    pub xs: Vec<f64>,
    /// Vertical grid values (increasing).
    pub ys: Vec<f64>,
    /// The field, first index along x.
    pub values: Vec<f64>,
    /// Colour by `log10 |value|` instead of the value (the colour bar then
    /// shows the exponent; say so in the title).
    pub log_abs: bool,
    /// A point to mark (a black ring with a white core), if any.
    pub marker: Option<(f64, f64)>,
}

/// Cell edges halfway between grid values (the outer cells mirrored).
fn edges(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n == 1 {
        return vec![v[0] - 0.5, v[0] + 0.5];
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(v[0] - 0.5 * (v[1] - v[0]));
    for w in v.windows(2) {
        e.push(0.5 * (w[0] + w[1]));
    }
    e.push(v[n - 1] + 0.5 * (v[n - 1] - v[n - 2]));
    e
}

/// A perceptually ordered colour map (dark blue → teal → yellow), `t ∈ [0, 1]`.
fn colormap(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |p: f64, q: f64| (p + f * (q - p)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_field(area: &DrawingArea<BitMapBackend<'_>, Shift>, f: &Field, path: &Path) -> Result<()> {
    let err = plot_err(path);
    let (nx, ny) = (f.xs.len(), f.ys.len());
    if nx * ny != f.values.len() || nx == 0 || ny == 0 {
        return Err(err(format!(
            "field `{}`: {} values for a {nx}×{ny} grid",
            f.title,
            f.values.len()
        )));
    }
    // log10 |v|; exact zeros (e.g. where a hard constraint makes the error
    // vanish) are drawn at the smallest non-zero magnitude, not at -inf.
    let floor = f
        .values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .fold(f64::INFINITY, |m, v| m.min(v.abs()))
        .log10();
    let shown: Vec<f64> = f
        .values
        .iter()
        .map(|v| {
            if f.log_abs && !v.is_nan() {
                if *v == 0.0 { floor } else { v.abs().log10() }
            } else {
                *v
            }
        })
        .collect();
    let (lo, hi) = shown
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(colorbar_width(lo, hi)));
    let (ex, ey) = (edges(&f.xs), edges(&f.ys));
    let mut chart = ChartBuilder::on(&main)
        .caption(&f.title, (FONT_FAMILY, 20))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(ex[0]..ex[nx], ey[0]..ey[ny])
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&f.x_name)
        .y_desc(&f.y_name)
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 16))
        .x_label_formatter(&linear_labels(ex[nx] - ex[0]))
        .y_label_formatter(&linear_labels(ey[ny] - ey[0]))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let cells = (0..nx).flat_map(|i| (0..ny).map(move |j| (i, j)));
    chart
        .draw_series(cells.map(|(i, j)| {
            let v = shown[i * ny + j];
            // NaN marks cells outside the domain: left blank.
            let style = if v.is_nan() {
                WHITE.filled()
            } else {
                colormap((v - lo) / (hi - lo)).filled()
            };
            Rectangle::new([(ex[i], ey[j]), (ex[i + 1], ey[j + 1])], style)
        }))
        .map_err(|e| err(e.to_string()))?;
    if let Some(m) = f.marker {
        chart
            .draw_series([
                Circle::new(m, 7, BLACK.filled()),
                Circle::new(m, 3, WHITE.filled()),
            ])
            .map_err(|e| err(e.to_string()))?;
    }
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(40)
        .margin_bottom(55)
        .margin_right(COLORBAR_MARGIN)
        .y_label_area_size(colorbar_label_width(lo, hi))
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| err(e.to_string()))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style((FONT_FAMILY, 13))
        .y_label_formatter(&linear_labels(hi - lo))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let steps = 128;
    cb.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            colormap((k as f64 + 0.5) / steps as f64).filled(),
        )
    }))
    .map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Pixels of the colour bar itself and of the margin right of it.
const COLORBAR_BAR: u32 = 30;
const COLORBAR_MARGIN: u32 = 10;

/// Pixels for the colour bar's tick labels (13 px DejaVu Sans, at most
/// 8 px per character), from the longest label any value in `lo..hi` can
/// get: every label fits inside the image, however long the numbers.
fn colorbar_label_width(lo: f64, hi: f64) -> u32 {
    let longest = [lo, hi, 0.5 * (lo + hi), -lo.abs().max(hi.abs()) * 1.01]
        .iter()
        .map(|v| short_label(v).chars().count())
        .max()
        .unwrap_or(4) as u32;
    (longest * 8 + 14).max(60)
}

/// The whole colour-bar column: labels, bar, margin.
fn colorbar_width(lo: f64, hi: f64) -> u32 {
    colorbar_label_width(lo, hi) + COLORBAR_BAR + COLORBAR_MARGIN
}

/// Heat maps of the fields side by side in one PNG, each with its colour bar.
pub fn heatmaps(path: &Path, title: &str, fields: &[Field], panel: (u32, u32)) -> Result<()> {
    ensure_font();
    let err = plot_err(path);
    let n = fields.len().max(1) as u32;
    let root = BitMapBackend::new(path, (panel.0 * n, panel.1 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let root = root
        .titled(title, (FONT_FAMILY, 24))
        .map_err(|e| err(e.to_string()))?;
    for (area, f) in root.split_evenly((1, fields.len())).iter().zip(fields) {
        draw_field(area, f, path)?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log axis spans the data strictly, with ticks on whole decades at
    /// both ends (the old bounds put a loss of 1e-9 on the bottom axis).
    #[test]
    fn log_axis_spans_the_data_with_ticks_beyond() {
        assert_eq!(
            log_axis([3e-5, 0.0, -1.0, 20.0, f64::NAN].into_iter()),
            Some((-5, 2, 1))
        );
        assert_eq!(log_axis([0.0, -2.0].into_iter()), None);
        assert_eq!(log_axis([1e-9, 0.41].into_iter()), Some((-10, 0, 1)));
        assert_eq!(log_axis([0.14, 0.41].into_iter()), Some((-1, 0, 1)));
        for ys in [
            vec![1e-9, 1e2],
            vec![3e-25, 7.0],
            vec![1e-300, 1e300],
            vec![0.5],
        ] {
            let (lo, hi, step) = log_axis(ys.iter().copied()).unwrap();
            let (min, max) = (ys[0], ys[ys.len() - 1]);
            assert!(
                10f64.powi(lo) < min && max < 10f64.powi(hi),
                "{ys:?}: {lo}..{hi}"
            );
            assert!(lo % step == 0 && hi % step == 0, "ticks at both ends");
            assert!(
                (hi - lo) / step <= 10,
                "{ys:?}: {} ticks",
                (hi - lo) / step + 1
            );
        }
    }

    /// The colour bar's label column grows with its labels, so that none is
    /// cut at the image's edge (the longest, `-1.2e-10`, is 8 characters).
    #[test]
    fn colorbar_labels_fit() {
        assert!(colorbar_label_width(0.0, 1.0) >= 60);
        let w = colorbar_label_width(-1.2e-10, 3.4e-11);
        assert!(w >= 8 * 8 + 14, "{w}");
        assert!(colorbar_width(-12.0, -3.0) >= colorbar_label_width(-12.0, -3.0) + COLORBAR_BAR);
    }

    #[test]
    fn log_tick_labels_have_two_digits() {
        assert_eq!(two_digits(3.16227), "3.2");
        assert_eq!(two_digits(31.6227), "32");
        assert_eq!(two_digits(0.0316227), "0.032");
        assert_eq!(two_digits(0.001), "0.001");
        assert_eq!(two_digits(1.0), "1");
        assert_eq!(two_digits(100.0), "100");
    }

    #[test]
    fn edges_bracket_the_points() {
        assert_eq!(edges(&[0.0, 1.0, 3.0]), vec![-0.5, 0.5, 2.0, 4.0]);
        assert_eq!(colormap(0.0), RGBColor(68, 1, 84));
        assert_eq!(colormap(1.0), RGBColor(253, 231, 37));
    }

    /// A companion curve above every main curve widens the y axis (a
    /// held-out loss of 11 over training losses ≤ 1 once sat clipped at 1e0).
    #[test]
    fn companions_widen_the_axes() {
        let plot = LogPlot {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "a".into(),
                points: vec![(0.0, 1.0), (1.0, 1e-12)],
                companion: Some(("a held-out".into(), vec![(1.0, 11.0)])),
            }],
            hlines: vec![],
            vlines: vec![],
            log_x: false,
        };
        let (_, top, _) = log_axis(plotted_points(&plot).map(|p| p.1)).unwrap();
        assert!(top >= 2, "top decade {top}");
    }

    /// Both kinds of figure are written as PNG files (non-empty, PNG signature).
    #[test]
    fn figures_are_written() {
        let dir = std::env::temp_dir().join(format!("natgrad-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lp = dir.join("curves.png");
        log_plot(
            &lp,
            &LogPlot {
                title: "test".into(),
                x_label: "iteration".into(),
                y_label: "loss".into(),
                series: vec![Series {
                    label: "a".into(),
                    points: (0..50).map(|i| (i as f64, 10f64.powi(-i / 5))).collect(),
                    companion: Some((
                        "a held-out".into(),
                        (0..50).map(|i| (i as f64, 10f64.powi(-i / 6))).collect(),
                    )),
                }],
                hlines: vec![(1e-6, "level".into())],
                vlines: vec![(10.0, "rank".into())],
                log_x: true,
            },
            (640, 480),
        )
        .unwrap();
        let hp = dir.join("field.png");
        let xs: Vec<f64> = (0..8).map(|i| i as f64 / 7.0).collect();
        let values: Vec<f64> = (0..64).map(|k| (k as f64).sin()).collect();
        let f = Field {
            marker: None,
            title: "u".into(),
            x_name: "x".into(),
            y_name: "y".into(),
            xs: xs.clone(),
            ys: xs,
            values,
            log_abs: false,
        };
        let mut g = f.clone();
        g.log_abs = true;
        heatmaps(&hp, "fields", &[f, g], (400, 360)).unwrap();
        for p in [lp, hp] {
            let bytes = std::fs::read(&p).unwrap();
            assert!(bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"), "{p:?}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
