//! `latency.svg`: the distribution of end-to-end latency, one CDF per group and run.
//!
//! Each curve is its histogram's empirical CDF: at every latency `v`, the fraction of calls
//! that took at most `v`, drawn as steps at the recorded values. Latency spans orders of
//! magnitude (a light call waits microseconds, or a whole slice behind a heavy one), so the
//! x axis is logarithmic. A group keeps its colour across runs and each run after the first
//! has its own dash, so that the same group under two fairness modes reads as a pair. The
//! legend has a panel of its own on the right: inside the chart, every corner can hold a
//! curve.

use std::io;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::RunSamples;
use super::format;

/// The picture's size in pixels.
const SIZE: (u32, u32) = (900, 600);

/// Okabe and Ito's palette, without its yellow (too pale on white): told apart by readers
/// with any common colour blindness.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// The dashes (length, gap) of the second run, the third and so on; the first is solid.
const DASHES: [(u32, u32); 3] = [(8, 5), (2, 4), (14, 4)];

/// A curve moves at least this far, in decades of latency or in fraction of calls, between
/// two of its points: about a pixel, so that a histogram with thousands of distinct values
/// draws as a few hundred points that look the same.
const MIN_STEP_DECADES: f64 = 0.004;
const MIN_STEP_FRACTION: f64 = 0.002;

/// Space around the chart, and above the legend's first entry to line it up with the chart.
const MARGIN: u32 = 20;

/// The legend's font size, the length of its line samples and its largest row height.
const LEGEND_FONT: u32 = 15;
const LEGEND_SAMPLE: i32 = 28;
const LEGEND_ROW: i32 = 22;

/// One line of the plot.
struct Curve {
    label: String,
    /// (latency in microseconds, fraction of calls that took at most that long).
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    /// The run's position among the runs.
    run: usize,
}

impl Curve {
    fn style(&self) -> ShapeStyle {
        self.colour.stroke_width(2)
    }

    /// The curve's dash (length, gap), or `None` for a solid line.
    fn dash(&self) -> Option<(u32, u32)> {
        let after_first = self.run.checked_sub(1)?;
        Some(DASHES[after_first % DASHES.len()])
    }
}

/// Draws the latency CDF of every group of every run into an SVG file at `path`.
pub(super) fn write_latency_plot(path: &Path, runs: &[RunSamples]) -> io::Result<()> {
    let curves = curves(runs);
    let (lowest, highest) = latency_range(&curves);

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root
        .titled(&title(runs), ("sans-serif", 24))
        .map_err(plot_error)?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - legend_width(&curves));

    let mut chart = ChartBuilder::on(&plot_area)
        .margin(MARGIN)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((lowest..highest).log_scale(), 0.0..1.0)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("latency, end to end (log scale)")
        .y_desc("fraction of calls")
        .x_label_formatter(&|us| format::micros_compact(*us))
        .y_label_formatter(&|fraction| format!("{fraction:.1}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(plot_error)?;

    for curve in &curves {
        // Values of 0 us have no place on a log axis: they sit at its left edge.
        let points = curve
            .points
            .iter()
            .map(|&(us, fraction)| (us.max(lowest), fraction));
        match curve.dash() {
            None => chart.draw_series(LineSeries::new(points, curve.style())),
            Some((dash, gap)) => {
                chart.draw_series(DashedLineSeries::new(points, dash, gap, curve.style()))
            }
        }
        .map_err(plot_error)?;
    }

    draw_legend(&legend_area, &curves)?;
    root.present().map_err(plot_error)
}

/// Wide enough for the longest label, within reason: the chart keeps at least 580 pixels.
fn legend_width(curves: &[Curve]) -> u32 {
    let longest = curves
        .iter()
        .map(|curve| curve.label.chars().count())
        .max()
        .unwrap_or(0);
    // plotters writes fonts at 1/1.24 of their size, and a sans-serif character is about
    // 0.55 of that wide: 0.45 of the nominal size.
    let text = longest as u32 * LEGEND_FONT * 9 / 20;
    (LEGEND_SAMPLE as u32 + 8 + text + MARGIN).clamp(150, 320)
}

/// A line sample and a label per curve, one under the other from the top of the chart.
fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, curves: &[Curve]) -> io::Result<()> {
    let height = area.dim_in_pixel().1 as i32 - 2 * MARGIN as i32;
    let row = (height / curves.len().max(1) as i32).clamp(1, LEGEND_ROW);
    let font = TextStyle::from(("sans-serif", LEGEND_FONT).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center));

    for (index, curve) in curves.iter().enumerate() {
        let y = MARGIN as i32 + row / 2 + index as i32 * row;
        let sample = [(0, y), (LEGEND_SAMPLE, y)];
        match curve.dash() {
            None => area.draw(&PathElement::new(sample, curve.style())),
            Some((dash, gap)) => {
                area.draw(&DashedPathElement::new(sample, dash, gap, curve.style()))
            }
        }
        .map_err(plot_error)?;
        let label = Text::new(curve.label.as_str(), (LEGEND_SAMPLE + 8, y), font.clone());
        area.draw(&label).map_err(plot_error)?;
    }
    Ok(())
}

/// A curve per group and run, labelled "light" for one run and "light (epoch)" for several.
fn curves(runs: &[RunSamples]) -> Vec<Curve> {
    let labels = format::run_labels(runs);
    let mut names: Vec<String> = Vec::new();
    let mut curves = Vec::new();
    for (run_index, (run, run_label)) in runs.iter().zip(&labels).enumerate() {
        for group in &run.groups {
            let name = format::group_name(group);
            let group_index = names
                .iter()
                .position(|known| *known == name)
                .unwrap_or_else(|| {
                    names.push(name.clone());
                    names.len() - 1
                });

            let mut label = if runs.len() > 1 {
                format!("{name} ({run_label})")
            } else {
                name
            };
            if group.latency_us.is_empty() {
                label.push_str(", no calls");
            }
            curves.push(Curve {
                label,
                points: cdf(&group.latency_us),
                colour: COLOURS[group_index % COLOURS.len()],
                run: run_index,
            });
        }
    }

    // With one group, colour by run instead: the dashes alone are harder to tell apart.
    if names.len() == 1 {
        for curve in &mut curves {
            curve.colour = COLOURS[curve.run % COLOURS.len()];
        }
    }
    curves
}

/// The histogram's CDF as steps at its recorded values, thinned to about a point per
/// pixel; empty for an empty histogram.
fn cdf(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut last = None;
    let mut below = 0.0;
    for step in histogram.iter_recorded() {
        let value = step.value_iterated_to() as f64;
        let at_most = step.quantile_iterated_to();

        // Across to this value, then up by the calls that took it.
        for point in [(value, below), (value, at_most)] {
            let far_enough = points.last().is_none_or(|kept| {
                (point.0.max(1.0) / kept.0.max(1.0)).log10() >= MIN_STEP_DECADES
                    || point.1 - kept.1 >= MIN_STEP_FRACTION
            });
            if far_enough {
                points.push(point);
            }
            last = Some(point);
        }
        below = at_most;
    }

    // The curve must end at the largest value and at 1, whatever was skipped.
    if let Some(last) = last
        && points.last() != Some(&last)
    {
        points.push(last);
    }
    points
}

/// The latency axis: from the power of ten below the fastest call to the one above the
/// slowest, at least one microsecond, so that ticks fall on round values. It spans two
/// decades at least: plotters labels a single decade with a tick too many.
fn latency_range(curves: &[Curve]) -> (f64, f64) {
    let mut values = curves
        .iter()
        .flat_map(|curve| &curve.points)
        .map(|point| point.0);
    let Some(first) = values.next() else {
        return (1.0, 1_000.0);
    };
    let (fastest, slowest) = values.fold((first, first), |(low, high), value| {
        (low.min(value), high.max(value))
    });

    let lowest = 10f64.powf(fastest.max(1.0).log10().floor());
    let highest = 10f64
        .powf(slowest.max(1.0).log10().ceil())
        .max(lowest * 100.0);
    (lowest, highest)
}

/// "noisy: latency of calls" and, for one run, its fairness mode and workers.
fn title(runs: &[RunSamples]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for run in runs {
        if !scenarios.contains(&run.scenario.as_str()) {
            scenarios.push(&run.scenario);
        }
    }
    let scenarios = scenarios.join(", ");
    match runs {
        [run] => format!(
            "{scenarios}: latency of calls (fairness {}, {} workers, quantum {})",
            run.fairness,
            run.workers,
            format::micros_compact(run.quantum.as_secs_f64() * 1e6),
        ),
        _ => format!("{scenarios}: latency of calls"),
    }
}

fn plot_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> io::Error {
    io::Error::other(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut histogram = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for value in values {
            histogram.record(value).unwrap();
        }
        histogram
    }

    #[test]
    fn cdf_steps_from_zero_to_one_at_every_distinct_value() {
        let points = cdf(&histogram([100, 100, 200, 400]));
        assert_eq!(
            points,
            [
                (100.0, 0.0),
                (100.0, 0.5),
                (200.0, 0.5),
                (200.0, 0.75),
                (400.0, 0.75),
                (400.0, 1.0)
            ]
        );
    }

    #[test]
    fn cdf_of_many_values_is_thinned_but_keeps_its_ends() {
        let values: Vec<u64> = (1..=1_000_000).step_by(7).collect();
        let points = cdf(&histogram(values.iter().copied()));

        assert!(points.len() < 3_000, "{} points", points.len());
        assert_eq!(points.first().unwrap().1, 0.0);
        assert_eq!(points.last().unwrap().1, 1.0);
        assert!(
            points
                .windows(2)
                .all(|pair| pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1)
        );
    }

    #[test]
    fn cdf_of_an_empty_histogram_has_no_points() {
        assert!(cdf(&histogram([])).is_empty());
    }

    #[test]
    fn latency_range_spans_whole_decades_around_the_values() {
        let curve = |points| Curve {
            label: String::new(),
            points,
            colour: BLACK,
            run: 0,
        };
        assert_eq!(latency_range(&[]), (1.0, 1_000.0));
        assert_eq!(
            latency_range(&[
                curve(vec![(0.0, 0.0), (350.0, 1.0)]),
                curve(vec![(42_000.0, 1.0)])
            ]),
            (1.0, 100_000.0)
        );
        assert_eq!(
            latency_range(&[curve(vec![(100.0, 1.0)])]),
            (100.0, 10_000.0)
        );
    }
}
