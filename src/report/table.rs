//! The table `corelane run` prints: one block per run, then a comparison across runs.

use std::io::{self, Write};

use hdrhistogram::Histogram;

use super::format::{self, micros};
use super::summary::{GroupReport, quantile};
use super::{GroupSamples, RunSamples, summarize};

/// The columns of a run's block, in order. Latency columns are spanned by one heading.
const COLUMNS: [Column; COLUMN_COUNT] = [
    Column::left("group"),
    Column::right("tenants"),
    Column::right("ok"),
    Column::left("failed"),
    Column::right("calls/s"),
    Column::right("p50"),
    Column::right("p99"),
    Column::right("p99.9"),
    Column::right("max"),
    Column::right("wait p99"),
    Column::right("run p50"),
    Column::right("yields/call"),
    Column::right("cpu"),
];

const COLUMN_COUNT: usize = 13;

/// One line of a run's block, a cell per column.
type Row = [String; COLUMN_COUNT];

/// The columns under the "latency" heading.
const LATENCY_COLUMNS: std::ops::RangeInclusive<usize> = 5..=8;

/// Between two columns.
const GAP: &str = "  ";

/// Before every line of a run's block but its title.
const INDENT: &str = "  ";

/// Prints a block for each run: a title line naming the scenario, the fairness mode, the
/// workers and the quantum; a row per group; and Jain's index with each worker's busy
/// fraction. With several runs, ends with each group's p99 latency in every run, side by side.
///
/// # Errors
///
/// Fails only when writing to `out` does.
pub fn print_table(runs: &[RunSamples], out: &mut dyn Write) -> io::Result<()> {
    for (index, run) in runs.iter().enumerate() {
        if index > 0 {
            writeln!(out)?;
        }
        print_run(run, out)?;
    }

    if runs.len() > 1 {
        writeln!(out)?;
        print_comparison(runs, out)?;
    }
    Ok(())
}

fn print_run(run: &RunSamples, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{}: fairness {}, {} workers, quantum {}, window {}, {} calls submitted",
        run.scenario,
        run.fairness,
        run.workers,
        format::duration(run.quantum),
        format::duration(run.duration),
        run.submitted,
    )?;

    // The table shows the same numbers as report.json, plus what only people read.
    let report = summarize(run);
    let rows: Vec<Row> = run
        .groups
        .iter()
        .zip(&report.groups)
        .map(|(samples, summary)| group_row(samples, summary))
        .collect();
    let widths = column_widths(&rows);

    writeln!(out, "{INDENT}{}", latency_heading(&widths).trim_end())?;
    let titles = COLUMNS.map(|column| column.title.to_owned());
    write_row(&titles, &widths, out)?;
    for row in &rows {
        write_row(row, &widths, out)?;
    }

    let busy: Vec<String> = report
        .worker_busy
        .iter()
        .map(|busy| format!("{:.0}%", busy * 100.0))
        .collect();
    let memory = match (report.rss_start_mb, report.rss_end_mb) {
        (Some(start), Some(end)) => format!("; resident memory {start:.0} MB -> {end:.0} MB"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{INDENT}Jain's index {:.3}; workers busy {}{memory}",
        report.jain_index,
        if busy.is_empty() {
            "-".to_owned()
        } else {
            busy.join(" ")
        },
    )
}

fn group_row(samples: &GroupSamples, summary: &GroupReport) -> Row {
    // The summary's percentiles are 0 for an empty histogram; the table says "-" instead.
    let recorded = !samples.latency_us.is_empty();
    let latency = |value: u64| {
        if recorded {
            micros(value as f64)
        } else {
            "-".to_owned()
        }
    };

    let ended = samples.jobs_ended();
    let yields_per_call = if ended == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}", samples.yields as f64 / ended as f64)
    };

    [
        samples.name.clone(),
        samples.tenants.to_string(),
        samples.ok.to_string(),
        failures(samples),
        throughput(summary.throughput_per_s),
        latency(summary.latency_us.p50),
        latency(summary.latency_us.p99),
        latency(summary.latency_us.p999),
        latency(summary.latency_us.max),
        percentile(&samples.wait_us, 0.99),
        percentile(&samples.run_us, 0.5),
        yields_per_call,
        format!("{:.1}%", summary.cpu_share * 100.0),
    ]
}

/// The histogram's value at `at`, or "-" if it recorded nothing.
fn percentile(histogram: &Histogram<u64>, at: f64) -> String {
    if histogram.is_empty() {
        "-".to_owned()
    } else {
        micros(quantile(histogram, at) as f64)
    }
}

/// "0", or the total with its kinds: "3 (Timeout 2, Trap 1)".
fn failures(samples: &GroupSamples) -> String {
    let total = samples.jobs_failed();
    if total == 0 {
        return "0".to_owned();
    }
    let kinds: Vec<String> = samples
        .failed
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    format!("{total} ({})", kinds.join(", "))
}

fn throughput(per_second: f64) -> String {
    if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.0}")
    }
}

fn column_widths(rows: &[Row]) -> [usize; COLUMN_COUNT] {
    let mut widths = COLUMNS.map(|column| width(column.title));
    for row in rows {
        for (cell, widest) in row.iter().zip(&mut widths) {
            *widest = (*widest).max(width(cell));
        }
    }
    widths
}

/// "---- latency ----" over the latency columns, blank elsewhere.
fn latency_heading(widths: &[usize; COLUMN_COUNT]) -> String {
    let before: usize = widths[..*LATENCY_COLUMNS.start()]
        .iter()
        .map(|width| width + GAP.len())
        .sum();
    let span: usize =
        widths[LATENCY_COLUMNS].iter().sum::<usize>() + GAP.len() * (LATENCY_COLUMNS.count() - 1);
    format!("{:before$}{:-^span$}", "", " latency, end to end ")
}

fn write_row(cells: &Row, widths: &[usize; COLUMN_COUNT], out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::from(INDENT);
    for (index, ((cell, column), widest)) in cells.iter().zip(&COLUMNS).zip(widths).enumerate() {
        if index > 0 {
            line.push_str(GAP);
        }
        let padding = " ".repeat(widest - width(cell));
        match column.align {
            Align::Left => {
                line.push_str(cell);
                line.push_str(&padding);
            }
            Align::Right => {
                line.push_str(&padding);
                line.push_str(cell);
            }
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// Each group's p99 latency in every run, one line per group:
/// "light  p99: epoch 2.10 ms | never 183 ms".
fn print_comparison(runs: &[RunSamples], out: &mut dyn Write) -> io::Result<()> {
    let labels = format::run_labels(runs);

    // Groups in the order they first appear, each with its p99 in every run that has it.
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for group in &run.groups {
            let name = format::group_name(group);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let cells: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            runs.iter()
                .zip(&labels)
                .map(|(run, label)| format!("{label} {}", p99_of(run, name)))
                .collect()
        })
        .collect();

    // Pad each run's cell to the widest of its column so that the runs line up.
    let name_width = names.iter().map(|name| width(name)).max().unwrap_or(0);
    let mut cell_widths = vec![0; runs.len()];
    for row in &cells {
        for (cell, widest) in row.iter().zip(&mut cell_widths) {
            *widest = (*widest).max(width(cell));
        }
    }

    writeln!(out, "p99 latency, end to end, by run:")?;
    for (name, row) in names.iter().zip(&cells) {
        let padded: Vec<String> = row
            .iter()
            .zip(&cell_widths)
            .map(|(cell, widest)| format!("{cell}{}", " ".repeat(widest - width(cell))))
            .collect();
        let name_padding = " ".repeat(name_width - width(name));
        writeln!(
            out,
            "{INDENT}{name}{name_padding}  p99: {}",
            padded.join(" | ").trim_end()
        )?;
    }
    Ok(())
}

/// The p99 latency of the group called `name` in `run`, "-" if it has none.
fn p99_of(run: &RunSamples, name: &str) -> String {
    run.groups
        .iter()
        .find(|group| format::group_name(group) == name)
        .map_or_else(
            || "-".to_owned(),
            |group| percentile(&group.latency_us, 0.99),
        )
}

/// The width of a cell in a terminal, counting each character as one column.
fn width(text: &str) -> usize {
    text.chars().count()
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

#[derive(Clone, Copy)]
struct Column {
    title: &'static str,
    align: Align,
}

impl Column {
    const fn left(title: &'static str) -> Column {
        Column {
            title,
            align: Align::Left,
        }
    }

    const fn right(title: &'static str) -> Column {
        Column {
            title,
            align: Align::Right,
        }
    }
}
