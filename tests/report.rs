//! Reports built from hand-made samples: the keys of report.json, the numbers in it, the
//! plot and the table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use corelane::host::Fairness;
use corelane::report::{GroupSamples, Report, RunSamples, print_table, summarize, write_outputs};
use hdrhistogram::Histogram;
use serde_json::Value;

/// A histogram of microseconds as the runner makes them, holding `values`.
fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
    for value in values {
        histogram.record(value).unwrap();
    }
    histogram
}

/// A group whose calls all succeeded, took `latency_us`, waited a tenth of it and ran the
/// rest, and whose tenants used `tenant_cpu`.
fn group(name: &str, latency_us: &[u64], tenant_cpu: &[Duration]) -> GroupSamples {
    GroupSamples {
        name: name.to_owned(),
        tenants: tenant_cpu.len(),
        latency_us: histogram(latency_us.iter().copied()),
        wait_us: histogram(latency_us.iter().map(|us| us / 10)),
        run_us: histogram(latency_us.iter().map(|us| us - us / 10)),
        ok: latency_us.len() as u64,
        failed: BTreeMap::new(),
        tenant_cpu: tenant_cpu.to_vec(),
        yields: 0,
    }
}

/// A one-second run on two workers of `groups`.
fn run(fairness: Fairness, groups: Vec<GroupSamples>) -> RunSamples {
    RunSamples {
        scenario: "noisy".to_owned(),
        fairness,
        quantum: Duration::from_millis(1),
        workers: 2,
        duration: Duration::from_secs(1),
        submitted: groups.iter().map(GroupSamples::jobs_ended).sum(),
        groups,
        worker_busy: vec![0.75, 0.5],
        rss_start_mb: Some(100.0),
        rss_end_mb: Some(104.0),
    }
}

/// Light calls that take about a millisecond, and heavy ones that take most of a second.
fn noisy(fairness: Fairness, light_p99_us: u64) -> RunSamples {
    let mut light_latency: Vec<u64> = (0..980).map(|i| 500 + i).collect();
    light_latency.extend([light_p99_us; 20]);
    let mut light = group("light", &light_latency, &[Duration::from_millis(100); 4]);
    light.failed.insert("Timeout".to_owned(), 2);
    light.failed.insert("Trap".to_owned(), 1);
    light.yields = 30;

    let heavy = group(
        "heavy",
        &[400_000, 600_000, 800_000],
        &[Duration::from_millis(600), Duration::from_millis(500)],
    );
    run(fairness, vec![light, heavy])
}

/// An empty folder for one test's outputs.
fn output_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("report")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn key_set<const N: usize>(names: [&'static str; N]) -> BTreeSet<&'static str> {
    names.into_iter().collect()
}

fn table(runs: &[RunSamples]) -> String {
    let mut out = Vec::new();
    print_table(runs, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn report_json_has_exactly_the_documented_keys_at_every_level() {
    let dir = output_dir("keys");
    let (report_path, _) = write_outputs(&dir, &[noisy(Fairness::Epoch, 2_100)]).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(report_path).unwrap()).unwrap();

    assert_eq!(
        keys(&json),
        key_set([
            "scenario",
            "fairness",
            "quantum_us",
            "workers",
            "duration_s",
            "submitted",
            "groups",
            "jain_index",
            "worker_busy",
            "rss_start_mb",
            "rss_end_mb",
        ])
    );
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for group in groups {
        assert_eq!(
            keys(group),
            key_set([
                "name",
                "tenants",
                "jobs_ok",
                "jobs_failed",
                "throughput_per_s",
                "latency_us",
                "wait_us",
                "cpu_share",
            ])
        );
        assert_eq!(
            keys(&group["latency_us"]),
            key_set(["p50", "p99", "p999", "max"])
        );
        assert_eq!(keys(&group["wait_us"]), key_set(["p50", "p99"]));
    }
}

#[test]
fn report_json_has_the_documented_types() {
    let dir = output_dir("types");
    let (report_path, _) = write_outputs(&dir, &[noisy(Fairness::Fuel, 2_100)]).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(report_path).unwrap()).unwrap();

    assert_eq!(json["scenario"], "noisy");
    assert_eq!(json["fairness"], "fuel");
    assert_eq!(json["quantum_us"].as_u64(), Some(1_000));
    assert_eq!(json["workers"].as_u64(), Some(2));
    assert!(json["duration_s"].is_f64());
    assert_eq!(json["submitted"].as_u64(), Some(1_003 + 3));
    assert!(json["jain_index"].is_f64());
    assert!(
        json["worker_busy"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_f64)
    );

    let light = &json["groups"][0];
    assert_eq!(light["name"], "light");
    assert_eq!(light["tenants"].as_u64(), Some(4));
    assert_eq!(light["jobs_ok"].as_u64(), Some(1_000));
    assert_eq!(light["jobs_failed"].as_u64(), Some(3));
    assert!(light["throughput_per_s"].is_f64());
    assert!(light["cpu_share"].is_f64());
    for key in ["p50", "p99", "p999", "max"] {
        assert!(light["latency_us"][key].is_u64(), "latency_us.{key}");
    }
    for key in ["p50", "p99"] {
        assert!(light["wait_us"][key].is_u64(), "wait_us.{key}");
    }
}

#[test]
fn percentiles_are_ordered_and_match_the_histogram() {
    let mut latency: Vec<u64> = (1..=10_000).collect();
    latency.push(5_000_000);
    let report = summarize(&run(Fairness::Epoch, vec![group("spread", &latency, &[])]));
    let latency = report.groups[0].latency_us;
    let wait = report.groups[0].wait_us;

    assert!(latency.p50 <= latency.p99, "{latency:?}");
    assert!(latency.p99 <= latency.p999, "{latency:?}");
    assert!(latency.p999 <= latency.max, "{latency:?}");
    assert!(wait.p50 <= wait.p99, "{wait:?}");

    // Three significant digits: within 0.1% of the exact order statistics.
    let close = |value: u64, exact: u64| value.abs_diff(exact) * 1_000 <= exact;
    assert!(close(latency.p50, 5_000), "{latency:?}");
    assert!(close(latency.p99, 9_901), "{latency:?}");
    assert!(close(latency.p999, 9_991), "{latency:?}");
    assert!(close(latency.max, 5_000_000), "{latency:?}");
}

#[test]
fn throughput_counts_successful_calls_per_second_of_the_window() {
    let mut samples = noisy(Fairness::Epoch, 2_100);
    samples.duration = Duration::from_millis(500);
    let report = summarize(&samples);

    assert_eq!(report.duration_s, 0.5);
    assert_eq!(report.groups[0].throughput_per_s, 2_000.0);
    assert_eq!(report.groups[1].throughput_per_s, 6.0);
}

#[test]
fn cpu_shares_sum_to_at_most_one_when_inputs_are_consistent() {
    // Two workers for one second: 2 s of CPU at most, here 0.4 s + 1.1 s.
    let report = summarize(&noisy(Fairness::Epoch, 2_100));
    let shares: Vec<f64> = report.groups.iter().map(|group| group.cpu_share).collect();

    assert!((shares[0] - 0.2).abs() < 1e-9, "{shares:?}");
    assert!((shares[1] - 0.55).abs() < 1e-9, "{shares:?}");
    assert!(shares.iter().all(|share| (0.0..=1.0).contains(share)));
    assert!(shares.iter().sum::<f64>() <= 1.0);
    assert!(
        report
            .worker_busy
            .iter()
            .all(|busy| (0.0..=1.0).contains(busy))
    );
}

#[test]
fn cpu_shares_of_a_saturated_run_sum_to_one() {
    let cpu = [Duration::from_millis(500); 4];
    let samples = run(
        Fairness::Never,
        vec![group("a", &[10], &cpu[..2]), group("b", &[10], &cpu[2..])],
    );
    let report = summarize(&samples);

    let total: f64 = report.groups.iter().map(|group| group.cpu_share).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
}

#[test]
fn jain_index_is_one_when_tenants_use_equal_cpu() {
    let cpu = [Duration::from_millis(120); 5];
    let report = summarize(&run(Fairness::Epoch, vec![group("even", &[100], &cpu)]));
    assert!(
        (report.jain_index - 1.0).abs() < 1e-12,
        "{}",
        report.jain_index
    );
}

#[test]
fn jain_index_is_one_over_n_when_one_tenant_does_all_the_work() {
    let mut cpu = vec![Duration::ZERO; 4];
    cpu[0] = Duration::from_millis(900);
    let report = summarize(&run(Fairness::Never, vec![group("hog", &[100], &cpu)]));
    assert!(
        (report.jain_index - 0.25).abs() < 1e-12,
        "{}",
        report.jain_index
    );
}

#[test]
fn jain_index_is_the_lowest_over_groups_of_two_tenants_or_more() {
    let groups = vec![
        // (1 + 3)² / (2 · (1 + 9)) = 0.8
        group(
            "uneven",
            &[100],
            &[Duration::from_millis(100), Duration::from_millis(300)],
        ),
        group("even", &[100], &[Duration::from_millis(200); 3]),
        // A single tenant cannot be unfair to its group, however little it ran.
        group("alone", &[100], &[Duration::ZERO]),
    ];
    let report = summarize(&run(Fairness::Epoch, groups));
    assert!(
        (report.jain_index - 0.8).abs() < 1e-12,
        "{}",
        report.jain_index
    );
}

#[test]
fn jain_index_is_one_without_groups_to_compare_or_with_idle_tenants() {
    let single = summarize(&run(
        Fairness::Epoch,
        vec![group("alone", &[100], &[Duration::from_millis(5)])],
    ));
    assert_eq!(single.jain_index, 1.0);

    let idle = summarize(&run(
        Fairness::Epoch,
        vec![group("idle", &[], &[Duration::ZERO; 3])],
    ));
    assert_eq!(idle.jain_index, 1.0);
}

#[test]
fn one_run_writes_an_object_and_two_runs_an_array() {
    let epoch = noisy(Fairness::Epoch, 2_100);
    let never = noisy(Fairness::Never, 183_000);

    let dir = output_dir("one_run");
    let (path, _) = write_outputs(&dir, std::slice::from_ref(&epoch)).unwrap();
    let one: Report = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(one, summarize(&epoch));

    let dir = output_dir("two_runs");
    let (path, _) = write_outputs(&dir, &[epoch.clone(), never.clone()]).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    let two: Vec<Report> = serde_json::from_value(json).unwrap();
    assert_eq!(two, [summarize(&epoch), summarize(&never)]);
}

#[test]
fn write_outputs_creates_missing_folders() {
    let dir = output_dir("nested").join("a").join("b");
    let (report, plot) = write_outputs(&dir, &[noisy(Fairness::Epoch, 2_100)]).unwrap();
    assert_eq!(report, dir.join("report.json"));
    assert_eq!(plot, dir.join("latency.svg"));
    assert!(report.is_file() && plot.is_file());
}

/// Every piece of text in the SVG document, in order.
fn svg_texts(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).expect("well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    root.descendants()
        .filter(|node| node.has_tag_name("text"))
        .map(|node| node.text().unwrap_or_default().trim().to_owned())
        .collect()
}

#[test]
fn the_plot_is_an_svg_document_naming_each_group() {
    let dir = output_dir("plot_one_run");
    let (_, plot) = write_outputs(&dir, &[noisy(Fairness::Epoch, 2_100)]).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(plot).unwrap());

    for name in ["light", "heavy"] {
        assert!(
            texts.iter().any(|text| text == name),
            "no {name:?} in {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|text| text.contains("noisy")),
        "no title in {texts:?}"
    );
}

#[test]
fn the_plot_of_two_runs_labels_each_group_with_its_mode() {
    let dir = output_dir("plot_two_runs");
    let runs = [
        noisy(Fairness::Epoch, 2_100),
        noisy(Fairness::Never, 183_000),
    ];
    let (_, plot) = write_outputs(&dir, &runs).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(plot).unwrap());

    for label in [
        "light (epoch)",
        "light (never)",
        "heavy (epoch)",
        "heavy (never)",
    ] {
        assert!(
            texts.iter().any(|text| text == label),
            "no {label:?} in {texts:?}"
        );
    }
}

#[test]
fn the_plot_escapes_group_names() {
    let dir = output_dir("plot_escapes");
    let samples = run(
        Fairness::Epoch,
        vec![group("a<b & \"c\"", &[100, 200], &[])],
    );
    let (_, plot) = write_outputs(&dir, &[samples]).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(plot).unwrap());
    assert!(texts.iter().any(|text| text == "a<b & \"c\""), "{texts:?}");
}

#[test]
fn the_table_names_each_group_and_its_failures() {
    let text = table(&[noisy(Fairness::Epoch, 2_100)]);

    assert!(
        text.starts_with("noisy: fairness epoch, 2 workers, quantum 1.00 ms"),
        "{text}"
    );
    let light = text
        .lines()
        .find(|line| line.trim_start().starts_with("light"))
        .unwrap();
    assert!(light.contains("3 (Timeout 2, Trap 1)"), "{light}");
    assert!(light.contains("0.03"), "yields per call in {light}");
    assert!(light.contains("20.0%"), "CPU share in {light}");
    assert!(
        text.lines()
            .any(|line| line.trim_start().starts_with("heavy")),
        "{text}"
    );
    assert!(text.contains("Jain's index"), "{text}");
    assert!(text.contains("75% 50%"), "worker busy in {text}");
    assert!(!text.contains("p99:"), "a comparison for one run in {text}");
}

#[test]
fn the_table_keeps_its_columns_aligned() {
    let text = table(&[noisy(Fairness::Epoch, 2_100)]);

    // The title row and every group row end at the same column: the last one is aligned right.
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| {
            ["group", "light", "heavy"]
                .iter()
                .any(|start| line.trim_start().starts_with(start))
        })
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows.iter().all(|row| row.len() == rows[0].len()), "{text}");

    // Every column of numbers lines up with its title's right edge.
    let p99_end = rows[0].find("  p99  ").unwrap() + "  p99".len();
    for row in &rows[1..] {
        assert_ne!(row.as_bytes()[p99_end - 1], b' ', "{text}");
        assert_eq!(row.as_bytes()[p99_end], b' ', "{text}");
    }
}

#[test]
fn the_table_of_two_runs_compares_each_groups_p99() {
    let text = table(&[
        noisy(Fairness::Epoch, 2_100),
        noisy(Fairness::Never, 183_000),
    ]);

    assert!(text.contains("noisy: fairness epoch"), "{text}");
    assert!(text.contains("noisy: fairness never"), "{text}");
    let light = text
        .lines()
        .find(|line| line.trim_start().starts_with("light") && line.contains("p99:"))
        .unwrap_or_else(|| panic!("no comparison for light in {text}"));
    assert!(light.contains("epoch 2.10 ms"), "{light}");
    assert!(light.contains("never 183 ms"), "{light}");
    assert!(
        text.lines()
            .any(|line| line.trim_start().starts_with("heavy") && line.contains("p99:")),
        "{text}"
    );
}

#[test]
fn empty_histograms_and_an_empty_window_do_not_panic() {
    let idle = GroupSamples {
        name: "idle".to_owned(),
        tenants: 2,
        latency_us: histogram([]),
        wait_us: histogram([]),
        run_us: histogram([]),
        ok: 0,
        failed: BTreeMap::new(),
        tenant_cpu: vec![Duration::ZERO; 2],
        yields: 0,
    };
    let mut samples = run(Fairness::Never, vec![idle]);
    samples.duration = Duration::ZERO;
    samples.workers = 0;
    samples.worker_busy = Vec::new();

    let report = summarize(&samples);
    let group = &report.groups[0];
    assert_eq!((group.latency_us.p50, group.latency_us.p99), (0, 0));
    assert_eq!((group.latency_us.p999, group.latency_us.max), (0, 0));
    assert_eq!((group.wait_us.p50, group.wait_us.p99), (0, 0));
    assert_eq!((group.throughput_per_s, group.cpu_share), (0.0, 0.0));
    assert_eq!(report.jain_index, 1.0);

    let text = table(&[samples.clone(), samples.clone()]);
    assert!(text.contains("idle"), "{text}");

    // The outputs still read back: no NaN or infinity reached the JSON.
    let dir = output_dir("empty");
    let (path, plot) = write_outputs(&dir, &[samples]).unwrap();
    let read: Report = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(read, report);
    let texts = svg_texts(&std::fs::read_to_string(plot).unwrap());
    assert!(
        texts.iter().any(|text| text.starts_with("idle")),
        "{texts:?}"
    );
}

#[test]
fn no_runs_write_an_empty_array_and_an_empty_plot() {
    let dir = output_dir("no_runs");
    let (path, plot) = write_outputs(&dir, &[]).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(json, Value::Array(Vec::new()));
    svg_texts(&std::fs::read_to_string(plot).unwrap());
    assert_eq!(table(&[]), "");
}
