//! Figures of a sweep, each written as PNG and SVG: accuracy against HE cost
//! (one colour and marker per strategy, each strategy's Pareto front as a step
//! line, the dense model as a black star), per-layer rotations of a dense
//! and a pruned model, and where an end-to-end inference's time goes. Text is laid out with an embedded DejaVu Sans
//! (assets/, Bitstream Vera license), registered with plotters' `ab_glyph`
//! support, so PNGs are identical on every machine and need no system fonts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::budgets::CurvePoint;
use crate::pareto::{self, Cost, Summary};
use crate::points::PointRecord;
use explore_spec::Strategy;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// plotters' default family, used by every text style below.
const FAMILY: &str = "sans-serif";
const ACCURACY_LABEL: &str = "test accuracy of the integer model (%)";
const GRID: RGBColor = RGBColor(225, 225, 225);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("{path}: no point has a measured {cost} to plot")]
    NoPoints { path: PathBuf, cost: Cost },
    #[error(
        "{path}: no point has a validation accuracy to plot against its recovery budget: set data.validation in the spec"
    )]
    NoValidation { path: PathBuf },
}

fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Other styles (bold, italic) fall back to this one.
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("assets/DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Tick labels with as many decimals as an axis spanning `span` needs.
fn tick_label(span: f64) -> impl Fn(&f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    };
    move |x| format!("{x:.decimals$}")
}

/// A figure that can draw itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// The series labels of a chart, in a white box at `position`, in the
/// figures' font at `size` points.
fn boxed_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    size: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

/// Draws `figure` into a PNG and an SVG file.
fn render(figure: &impl Figure, png: &Path, svg: &Path) -> Result<(), PlotError> {
    register_embedded_font();
    fn finish<DB: DrawingBackend>(
        figure: &impl Figure,
        root: DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), PlotError> {
        root.fill(&WHITE)
            .and_then(|()| figure.draw(&root))
            .and_then(|()| root.present())
            .map_err(|e| PlotError::Draw {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }
    finish(
        figure,
        BitMapBackend::new(png, figure.size()).into_drawing_area(),
        png,
    )?;
    finish(
        figure,
        SVGBackend::new(svg, figure.size()).into_drawing_area(),
        svg,
    )
}

/// Colour (Okabe-Ito, distinguishable with colour blindness) and marker of a
/// strategy.
fn strategy_style(s: Strategy) -> (RGBColor, Vec<(i32, i32)>) {
    let r = 7.0;
    match s {
        Strategy::Dense => (BLACK, star(11.0, 4.5)),
        Strategy::Positional => (RGBColor(0, 114, 178), regular(16, r, 0.0)),
        Strategy::Diagonal => (RGBColor(213, 94, 0), regular(3, r + 1.5, -90.0)),
        Strategy::Hybrid => (RGBColor(204, 121, 167), regular(4, r + 1.0, 45.0)),
        Strategy::Unstructured => (RGBColor(0, 158, 115), plus(r + 1.0, 2.5)),
        Strategy::Channel => (RGBColor(230, 159, 0), regular(4, r + 1.0, 0.0)),
        Strategy::DenseMatched => (RGBColor(86, 180, 233), star(11.0, 4.5)),
    }
}

/// Marker outlines as pixel offsets from the data point.
fn polygon(vertices: impl Iterator<Item = (f64, f64)>) -> Vec<(i32, i32)> {
    vertices
        .map(|(x, y)| (x.round() as i32, y.round() as i32))
        .collect()
}

fn regular(sides: usize, radius: f64, start_degrees: f64) -> Vec<(i32, i32)> {
    polygon((0..sides).map(|i| {
        let a = (start_degrees + 360.0 * i as f64 / sides as f64).to_radians();
        (radius * a.cos(), radius * a.sin())
    }))
}

fn star(outer: f64, inner: f64) -> Vec<(i32, i32)> {
    polygon((0..10).map(|i| {
        let a = (-90.0 + 36.0 * i as f64).to_radians();
        let r = if i % 2 == 0 { outer } else { inner };
        (r * a.cos(), r * a.sin())
    }))
}

fn plus(arm: f64, half_width: f64) -> Vec<(i32, i32)> {
    let (a, w) = (arm, half_width);
    polygon(
        [
            (-w, -a),
            (w, -a),
            (w, -w),
            (a, -w),
            (a, w),
            (w, w),
            (w, a),
            (-w, a),
            (-w, w),
            (-a, w),
            (-a, -w),
            (-w, -w),
        ]
        .into_iter(),
    )
}

/// One point's error bars, in the plot's units (accuracy in points, cost in
/// its own): one standard error either side.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bars {
    /// The test set's binomial error alone.
    images: f64,
    /// Images and seeds together (the summary's own error): equal to
    /// `images` with one seed, where seed noise cannot be measured.
    total: f64,
    /// The cost's seed-to-seed error of the mean (0 with one seed).
    cost: f64,
}

impl Bars {
    fn of(p: &Summary, cost: Cost) -> Bars {
        let images = 100.0 * explore_stats::binomial_se(p.accuracy.mean, p.test_images);
        Bars {
            images: images.min(100.0 * p.accuracy.se),
            total: 100.0 * p.accuracy.se,
            cost: cost.estimate(p).se,
        }
    }
}

/// Test accuracy against one cost: every strategy/target pair at its mean
/// over seeds, with error bars from both noise sources ([`Bars`]).
struct AccuracyVsCost<'a> {
    title: &'a str,
    cost: Cost,
    /// Summaries with a measured cost, by strategy.
    groups: BTreeMap<Strategy, Vec<&'a Summary>>,
    /// The dense model under other schedules (Gazelle's), drawn in grey.
    references: Vec<&'a Summary>,
}

impl AccuracyVsCost<'_> {
    /// Width of the plot; the legend has the rest, beside it, so that it
    /// never covers a point.
    const PLOT_PX: u32 = 1170;
}

impl Figure for AccuracyVsCost<'_> {
    fn size(&self) -> (u32, u32) {
        (1500, 800)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        whole: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (root, legend_area) = whole.split_horizontally(Self::PLOT_PX);
        let root = &root;
        let mut legend: Vec<(String, RGBColor, Vec<(i32, i32)>)> = Vec::new();
        let all = || self.groups.values().flatten().chain(&self.references);
        // At least 1 so an all-zero cost still spans a drawable axis.
        let max_cost = all()
            .map(|p| self.cost.of(p) + Bars::of(p, self.cost).cost)
            .fold(1.0, f64::max);
        let percent = |p: &Summary| 100.0 * p.accuracy.mean;
        let bar = |p: &Summary| Bars::of(p, self.cost).total;
        let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(percent(p) - bar(p)), h.max(percent(p) + bar(p)))
        });
        let pad = ((hi - lo) * 0.08).max(0.5);
        let (y_lo, y_hi) = ((lo - pad).max(0.0), (hi + pad).min(100.0));
        let x_hi = max_cost * 1.05;
        let (x_tick, y_tick) = (tick_label(x_hi), tick_label(y_hi - y_lo));
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FAMILY, 30))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc(self.cost.label())
            .y_desc(ACCURACY_LABEL)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .axis_desc_style((FAMILY, 22))
            .label_style((FAMILY, 18))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (&strategy, points) in &self.groups {
            let (color, shape) = strategy_style(strategy);
            if !strategy.is_dense() {
                chart.draw_series(LineSeries::new(
                    front_steps(points, self.cost),
                    color.mix(0.8).stroke_width(2),
                ))?;
            }
            let marker = move |at: (f64, f64)| {
                EmptyElement::at(at) + Polygon::new(shape.clone(), color.filled())
            };
            let legend_shape = strategy_style(strategy).1;
            // Thin with caps: images and seeds; thick: the images' part
            // alone; across: the cost's seed-to-seed error.
            let at: Vec<(f64, f64, Bars)> = points
                .iter()
                .map(|p| (self.cost.of(p), percent(p), Bars::of(p, self.cost)))
                .collect();
            chart.draw_series(at.iter().map(|&(x, y, b)| {
                ErrorBar::new_vertical(x, y - b.total, y, y + b.total, color.stroke_width(2), 10)
            }))?;
            chart.draw_series(at.iter().map(|&(x, y, b)| {
                PathElement::new(
                    vec![(x, y - b.images), (x, y + b.images)],
                    color.stroke_width(6),
                )
            }))?;
            chart.draw_series(
                at.iter()
                    .filter(|(_, _, b)| b.cost > 0.0)
                    .map(|&(x, y, b)| {
                        ErrorBar::new_horizontal(
                            y,
                            x - b.cost,
                            x,
                            x + b.cost,
                            color.stroke_width(2),
                            10,
                        )
                    }),
            )?;
            chart.draw_series(points.iter().map(|p| marker((self.cost.of(p), percent(p)))))?;
            let label = match strategy {
                Strategy::Dense => "dense (unpruned)",
                Strategy::DenseMatched => "dense, budget-matched",
                s => s.name(),
            };
            legend.push((label.to_string(), color, legend_shape));
        }
        for r in &self.references {
            let grey = RGBColor(150, 150, 150);
            let shape = strategy_style(Strategy::Dense).1;
            chart.draw_series(std::iter::once(
                EmptyElement::at((self.cost.of(r), percent(r)))
                    + Polygon::new(shape.clone(), grey.filled()),
            ))?;
            legend.push((format!("dense, {} schedule", r.schedule), grey, shape));
        }
        let text = (FAMILY, 20).into_font().color(&BLACK);
        let row = |i: usize| 90 + 34 * i as i32;
        for (i, (label, color, shape)) in legend.iter().enumerate() {
            legend_area.draw(
                &(EmptyElement::at((24, row(i))) + Polygon::new(shape.clone(), color.filled())),
            )?;
            legend_area.draw(&Text::new(
                label.as_str(),
                (46, row(i)),
                text.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        let note = (FAMILY, 16).into_font().color(&RGBColor(90, 90, 90));
        for (j, line) in [
            "bars: one standard error;",
            "thick: the test images alone,",
            "thin: images and seeds,",
            "across: the cost over seeds;",
            "lines: each strategy's front",
        ]
        .iter()
        .enumerate()
        {
            legend_area.draw(&Text::new(
                *line,
                (14, row(legend.len()) + 10 + 22 * j as i32),
                note.clone(),
            ))?;
        }
        Ok(())
    }
}

/// The attainment curve of the points' front: from each front point across to
/// the next one's cost, then up to its accuracy (in percent).
fn front_steps(points: &[&Summary], cost: Cost) -> Vec<(f64, f64)> {
    let front = pareto::front(points.iter().copied(), cost);
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(2 * front.len());
    for (i, p) in front.iter().enumerate() {
        let (c, a) = (cost.of(p), 100.0 * p.accuracy.mean);
        if i > 0 {
            steps.push((c, steps[steps.len() - 1].1));
        }
        steps.push((c, a));
    }
    steps
}

/// Plots test accuracy against `cost` for every strategy/target pair whose
/// cost was measured (means over seeds with standard-error bars), to
/// `png_path` and `svg_path`.
pub fn accuracy_vs_cost(
    points: &[PointRecord],
    cost: Cost,
    title: &str,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(), PlotError> {
    let summaries = pareto::summarize(points);
    let mut groups: BTreeMap<Strategy, Vec<&Summary>> = BTreeMap::new();
    for p in summaries.iter().filter(|p| cost.of(p).is_finite()) {
        groups.entry(p.strategy).or_default().push(p);
    }
    if groups.is_empty() {
        return Err(PlotError::NoPoints {
            path: png_path.to_path_buf(),
            cost,
        });
    }
    let references = pareto::references(points);
    render(
        &AccuracyVsCost {
            title,
            cost,
            groups,
            references: references
                .iter()
                .filter(|r| cost.of(r).is_finite())
                .collect(),
        },
        png_path,
        svg_path,
    )
}

/// Validation accuracy of the integer model against recovery budget: one
/// line per strategy and target (the twin dashed-grey), so that where the
/// curves flatten is the budget worth paying for.
struct RecoveryCurve<'a> {
    lines: BTreeMap<(Strategy, u64), Vec<&'a CurvePoint>>,
}

impl Figure for RecoveryCurve<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 760)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let all = || self.lines.values().flatten();
        let max_budget = all().map(|c| c.budget).max().unwrap_or(1) as f64;
        let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), c| {
            (l.min(100.0 * c.validation), h.max(100.0 * c.validation))
        });
        let pad = ((hi - lo) * 0.1).max(0.5);
        let (y_lo, y_hi) = ((lo - pad).max(0.0), (hi + pad).min(100.0));
        let x_hi = max_budget * 1.08;
        let (x_tick, y_tick) = (tick_label(x_hi), tick_label(y_hi - y_lo));
        let mut chart = ChartBuilder::on(root)
            .caption("Validation accuracy against recovery budget", (FAMILY, 30))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("recovery budget (fine-tuning epochs after pruning)")
            .y_desc("validation accuracy of the integer model (%)")
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .axis_desc_style((FAMILY, 22))
            .label_style((FAMILY, 18))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (&(strategy, target_bits), line) in &self.lines {
            let (color, shape) = strategy_style(strategy);
            let at: Vec<(f64, f64)> = line
                .iter()
                .map(|c| (c.budget as f64, 100.0 * c.validation))
                .collect();
            let style = if strategy.is_dense() {
                RGBColor(150, 150, 150).stroke_width(2)
            } else {
                color.stroke_width(2)
            };
            let label = format!("{} {}", strategy.name(), f64::from_bits(target_bits));
            chart
                .draw_series(LineSeries::new(at.clone(), style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(at.into_iter().map(|p| {
                EmptyElement::at(p) + Polygon::new(shape.clone(), style.color.filled())
            }))?;
        }
        boxed_legend(&mut chart, SeriesLabelPosition::LowerRight, 18)
    }
}

/// Plots the recovery curve ([`crate::budgets::curve`]) to `png_path` and
/// `svg_path`.
pub fn recovery_curve(
    curve: &[CurvePoint],
    png_path: &Path,
    svg_path: &Path,
) -> Result<(), PlotError> {
    let mut lines: BTreeMap<(Strategy, u64), Vec<&CurvePoint>> = BTreeMap::new();
    for c in curve.iter().filter(|c| c.validation.is_finite()) {
        lines
            .entry((c.strategy, c.target.to_bits()))
            .or_default()
            .push(c);
    }
    if lines.is_empty() {
        return Err(PlotError::NoValidation {
            path: png_path.to_path_buf(),
        });
    }
    render(&RecoveryCurve { lines }, png_path, svg_path)
}

/// Rotations per layer, dense bar behind pruned bar, first layer on top.
struct LayerRotations<'a> {
    title: &'a str,
    rows: &'a [(String, u64, u64)],
}

impl LayerRotations<'_> {
    const ROW_PX: u32 = 30;
}

impl Figure for LayerRotations<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, (180 + Self::ROW_PX * self.rows.len() as u32).max(400))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.rows.len() as i32;
        let max = self
            .rows
            .iter()
            .map(|r| r.1.max(r.2))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        // Row i of the chart (counted from the bottom) shows layer n - 1 - i.
        let layer = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if (0..n).contains(i) => {
                Some(&self.rows[(n - 1 - i) as usize])
            }
            _ => None,
        };
        let labels: Vec<String> = self.rows.iter().map(|r| r.0.clone()).collect();
        // Room right of the longest bar for its "-62%" label.
        let mut chart = bar_rows(
            root,
            (self.title, 28),
            &labels,
            (max * 1.1, max),
            ("rotations per inference", "layer"),
        )?;
        let (pruned_color, _) = strategy_style(Strategy::Diagonal);
        let dense_color = RGBColor(190, 190, 190);
        let bar = |i: i32, value: u64, inset: u32, color: RGBColor| {
            let mut r = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (value as f64, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            r.set_margin(inset, inset, 0, 0);
            r
        };
        let bars = |value: fn(&(String, u64, u64)) -> u64, inset: u32, color: RGBColor| {
            (0..n).map(move |i| bar(i, value(&self.rows[(n - 1 - i) as usize]), inset, color))
        };
        chart
            .draw_series(bars(|r| r.1, 3, dense_color))?
            .label("dense")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], dense_color.filled())
            });
        chart
            .draw_series(bars(|r| r.2, 9, pruned_color))?
            .label("pruned")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 4), (x + 16, y + 4)], pruned_color.filled())
            });
        let font =
            TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series((0..n).filter_map(|i| {
            let (_, dense, pruned) = layer(&SegmentValue::CenterOf(i))?;
            let change = 100.0 * (*pruned as f64 / (*dense).max(1) as f64 - 1.0);
            let x = (*dense).max(*pruned) as f64 + max * 0.01;
            // Rounded first so a tiny change does not print as "-0%".
            let text = match change.round() {
                0.0 => "0%".to_string(),
                c => format!("{c:+}%"),
            };
            Some(Text::new(
                text,
                (x, SegmentValue::CenterOf(i)),
                font.clone(),
            ))
        }))?;
        boxed_legend(&mut chart, SeriesLabelPosition::UpperRight, 18)
    }
}

/// A chart of horizontal bars, one row per label with the first on top
/// (row i from the bottom is label n - 1 - i), x from 0 to `x.0` with ticks
/// for a span of `x.1`, its mesh and axis descriptions drawn.
#[allow(clippy::type_complexity)]
fn bar_rows<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    (title, title_size): (&str, u32),
    labels: &[String],
    x: (f64, f64),
    (x_desc, y_desc): (&str, &str),
) -> Result<
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, SegmentedCoord<RangedCoordi32>>>,
    DrawingAreaErrorKind<DB::ErrorType>,
> {
    let n = labels.len() as i32;
    let longest = labels.iter().map(String::len).max().unwrap_or(0) as u32;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if (0..n).contains(i) => {
            labels[(n - 1 - i) as usize].clone()
        }
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, title_size))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(40 + 10 * longest)
        .build_cartesian_2d(0.0..x.0, (0..n - 1).into_segmented())?;
    let x_tick = tick_label(x.1);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(labels.len())
        .y_label_formatter(&label)
        .x_label_formatter(&x_tick)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, 22))
        .label_style((FAMILY, 16))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(chart)
}

/// Bar chart of rotations per layer: `rows` are (layer name, dense rotations,
/// pruned rotations) in network order.
pub fn layer_rotations(
    rows: &[(String, u64, u64)],
    title: &str,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(), PlotError> {
    if rows.is_empty() {
        return Err(PlotError::Draw {
            path: png_path.to_path_buf(),
            message: "no layers to plot".into(),
        });
    }
    render(&LayerRotations { title, rows }, png_path, svg_path)
}

/// Where one inference's time goes, per network: a stacked bar each of
/// the server's HE time and the client's time (both measured) and the
/// communication on a link (computed from the bytes and rounds).
struct InferenceTime<'a> {
    title: &'a str,
    link: &'a str,
    rows: &'a [InferenceSplit],
}

/// One network's split of an inference's time (ms): the HE layers'
/// server and client parts, the two-party steps between them (0 under
/// client-aided), and the link.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceSplit {
    pub label: String,
    pub server_ms: f64,
    pub client_ms: f64,
    pub gc_ms: f64,
    pub link_ms: f64,
}

impl Figure for InferenceTime<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 200 + 70 * self.rows.len() as u32)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.rows.len() as i32;
        let total = |r: &InferenceSplit| r.server_ms + r.client_ms + r.gc_ms + r.link_ms;
        let max = self.rows.iter().map(total).fold(1.0, f64::max);
        let labels: Vec<String> = self.rows.iter().map(|r| r.label.clone()).collect();
        // The right half is kept free for the legend, which must never
        // cover a bar.
        let mut chart = bar_rows(
            root,
            (self.title, 26),
            &labels,
            (max * 2.2, max),
            ("ms per inference", ""),
        )?;
        // Each segment's name, colour and span along the bar.
        type Segment = (&'static str, RGBColor, fn(&InferenceSplit) -> (f64, f64));
        let parts: [Segment; 4] = [
            ("server HE (measured)", RGBColor(31, 119, 180), |r| {
                (0.0, r.server_ms)
            }),
            ("client HE (measured)", RGBColor(255, 127, 14), |r| {
                (r.server_ms, r.server_ms + r.client_ms)
            }),
            (
                "two-party steps, both parties (measured)",
                RGBColor(44, 160, 44),
                |r| {
                    let at = r.server_ms + r.client_ms;
                    (at, at + r.gc_ms)
                },
            ),
            ("", RGBColor(160, 160, 160), |r| {
                let at = r.server_ms + r.client_ms + r.gc_ms;
                (at, at + r.link_ms)
            }),
        ];
        for (name, color, span) in parts {
            let name = if name.is_empty() { self.link } else { name };
            chart
                .draw_series((0..n).map(|i| {
                    let (a, b) = span(&self.rows[(n - 1 - i) as usize]);
                    let mut r = Rectangle::new(
                        [(a, SegmentValue::Exact(i)), (b, SegmentValue::Exact(i + 1))],
                        color.filled(),
                    );
                    r.set_margin(8, 8, 0, 0);
                    r
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
                });
        }
        boxed_legend(&mut chart, SeriesLabelPosition::UpperRight, 16)
    }
}

/// Stacked bars of where an inference's time goes, one per network in
/// `rows` (first on top), the communication on `link` (computed).
pub fn inference_time(
    rows: &[InferenceSplit],
    title: &str,
    link: &str,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(), PlotError> {
    if rows.is_empty() {
        return Err(PlotError::Draw {
            path: png_path.to_path_buf(),
            message: "no end-to-end inference to plot".into(),
        });
    }
    render(&InferenceTime { title, link, rows }, png_path, svg_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    #[test]
    fn inference_time_bars_are_valid_png_and_svg() {
        let (_keep, dir) = out_dir();
        let rows = [
            InferenceSplit {
                label: "dense".into(),
                server_ms: 800.0,
                client_ms: 200.0,
                gc_ms: 5000.0,
                link_ms: 90.0,
            },
            InferenceSplit {
                label: "hybrid 0.8".into(),
                server_ms: 300.0,
                client_ms: 190.0,
                gc_ms: 5000.0,
                link_ms: 80.0,
            },
        ];
        let (png, svg) = (dir.join("time.png"), dir.join("time.svg"));
        inference_time(&rows, "Where an inference's time goes", "LAN", &png, &svg).unwrap();
        assert_png(&png);
        assert_svg(
            &svg,
            &[
                "hybrid 0.8",
                "server HE (measured)",
                "two-party steps",
                "LAN",
            ],
        );
        assert!(inference_time(&[], "t", "LAN", &png, &svg).is_err());
    }

    #[test]
    fn the_recovery_curve_is_valid_png_and_svg() {
        let (_keep, dir) = out_dir();
        let mut points = Vec::new();
        for (strategy, gain) in [(Strategy::Hybrid, 0.02), (Strategy::DenseMatched, 0.005)] {
            for (i, budget) in [1u64, 2, 4, 8].into_iter().enumerate() {
                let mut r = record(strategy, 0.5, 0.86 + gain * i as f64, 300);
                r.budget = budget;
                points.push(r);
            }
        }
        let curve = crate::budgets::curve(&points);
        let (png, svg) = (dir.join("recovery.png"), dir.join("recovery.svg"));
        recovery_curve(&curve, &png, &svg).unwrap();
        assert_png(&png);
        assert_svg(
            &svg,
            &["hybrid 0.5", "dense-matched 0.5", "recovery budget"],
        );
        // Without validation images there is nothing to draw.
        for r in &mut points {
            r.val_accuracy = f64::NAN;
        }
        let e = recovery_curve(&crate::budgets::curve(&points), &png, &svg).unwrap_err();
        assert!(e.to_string().contains("data.validation"), "{e}");
    }

    /// Made-up points of a small sweep: every strategy at a few targets.
    fn sweep() -> Vec<PointRecord> {
        let mut points = vec![record(Strategy::Dense, 0.0, 0.915, 1000)];
        let strategies = [
            (Strategy::Positional, 0.55),
            (Strategy::Diagonal, 0.35),
            (Strategy::Hybrid, 0.30),
            (Strategy::Unstructured, 0.95),
            (Strategy::Channel, 0.45),
        ];
        for (s, keep_per_target) in strategies {
            for (k, target) in [0.5, 0.7, 0.8, 0.9, 0.95].into_iter().enumerate() {
                let rotations = (1000.0 * (1.0 - target * (1.0 - keep_per_target))) as u64;
                let accuracy = 0.915 - 0.004 * (k * k) as f64 - 0.01 * (s as usize % 3) as f64;
                points.push(record(s, target, accuracy, rotations));
            }
        }
        points
    }

    fn assert_png(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    fn assert_svg(path: &Path, must_contain: &[&str]) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        for s in must_contain {
            assert!(text.contains(s), "{} lacks {s}", path.display());
        }
    }

    /// Renders into `EXPLORE_PLOT_DIR` when set (to look at the figures),
    /// else into a temporary directory.
    fn out_dir() -> (Option<tempfile::TempDir>, PathBuf) {
        match std::env::var_os("EXPLORE_PLOT_DIR") {
            Some(d) => (None, PathBuf::from(d)),
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        }
    }

    #[test]
    fn accuracy_plots_are_valid_png_and_svg() {
        let (_keep, dir) = out_dir();
        let points = sweep();
        for cost in Cost::ALL {
            let png = dir.join(format!("accuracy_vs_{cost}.png"));
            let svg = png.with_extension("svg");
            accuracy_vs_cost(
                &points,
                cost,
                &format!("ResNet-20, accuracy vs {cost}"),
                &png,
                &svg,
            )
            .unwrap();
            // The plot, and the legend beside it (never over a point).
            assert_eq!(assert_png(&png), (1500, 800));
            assert_svg(
                &svg,
                &[cost.label(), ACCURACY_LABEL, "dense (unpruned)", "diagonal"],
            );
        }
    }

    #[test]
    fn bars_split_the_images_part_from_the_seeds_part() {
        let at = |seed: u64, accuracy: f64, rotations: u64| PointRecord {
            seed,
            ..record(Strategy::Hybrid, 0.8, accuracy, rotations)
        };
        let one = pareto::summarize(&[at(0, 0.9, 100)]);
        let b = Bars::of(&one[0], Cost::Rotations);
        // One seed: the images' binomial error is all there is, in points.
        let binomial = 100.0 * (0.9f64 * 0.1 / 1000.0).sqrt();
        assert!((b.images - binomial).abs() < 1e-9, "{b:?}");
        assert_eq!(b.total, b.images);
        assert_eq!(b.cost, 0.0);
        let three = pareto::summarize(&[at(0, 0.88, 100), at(1, 0.90, 104), at(2, 0.92, 108)]);
        let b = Bars::of(&three[0], Cost::Rotations);
        // Seeds 2 points apart add sqrt(0.02^2 / 3) to the images' part.
        let seeds = 100.0 * 0.02 / 3f64.sqrt();
        assert!((b.total - b.images.hypot(seeds)).abs() < 1e-6, "{b:?}");
        assert!((b.cost - 4.0 / 3f64.sqrt()).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn unmeasured_latency_is_an_error_not_an_empty_plot() {
        let mut points = sweep();
        for p in &mut points {
            p.latency_measured_ms = f64::NAN;
        }
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("l.png");
        let e = accuracy_vs_cost(
            &points,
            Cost::Latency,
            "t",
            &png,
            &png.with_extension("svg"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no point has a measured latency"), "{e}");
    }

    #[test]
    fn layer_rotation_bars_are_valid_png_and_svg() {
        let (_keep, dir) = out_dir();
        let mut rows = vec![("conv1".to_string(), 24, 24)];
        for stage in 1..=3 {
            for block in 0..3 {
                for conv in ["conv1", "conv2"] {
                    let dense = 48 * stage as u64;
                    rows.push((
                        format!("layer{stage}.{block}.{conv}"),
                        dense,
                        dense / (block + 2),
                    ));
                }
            }
        }
        rows.push(("layer2.0.shortcut".to_string(), 16, 0));
        let png = dir.join("layer_rotations.png");
        let svg = png.with_extension("svg");
        layer_rotations(
            &rows,
            "Rotations per layer: diagonal, target 0.9",
            &png,
            &svg,
        )
        .unwrap();
        let (w, h) = assert_png(&png);
        assert_eq!(w, 1200);
        assert!(h >= 30 * rows.len() as u32, "{h}");
        assert_svg(
            &svg,
            &[
                "layer3.2.conv2",
                "rotations per inference",
                "-100%",
                "\n0%\n",
            ],
        );
    }
}
