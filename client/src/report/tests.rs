//! Report aggregation and rendering.

use vov_proto::pb;

use super::*;
use crate::store::TrialRow;

fn trial(id: &str, config: &str, fp: &str, acc: f64, b1: f64) -> TrialRow {
    TrialRow {
        trial_id: id.into(),
        config_id: config.into(),
        repeat: 0,
        label: format!("model-{config}"),
        model: "vovnet-39".into(),
        epochs: 2,
        spec: pb::TrialSpec::default(),
        state: TrialState::Succeeded,
        failure: String::new(),
        message: String::new(),
        host: Some("http://h:1".into()),
        attempt: 1,
        last_seq: 9,
        epoch: 2,
        last_val_acc: acc,
        stop_after: None,
        result: Some(pb::TrialResult {
            params: 18_634_282,
            max_val_acc: acc,
            train_s_per_epoch: Some(10.0 * acc),
            batch1: Some(pb::Batch1Timing {
                images: 10,
                total_s: b1,
                p50_ms: b1,
                p95_ms: b1,
                p99_ms: b1,
            }),
            history: vec![
                pb::EpochMetrics {
                    epoch: 1,
                    train_acc: 0.3,
                    val_acc: acc / 2.0,
                    ..Default::default()
                },
                pb::EpochMetrics {
                    epoch: 2,
                    train_acc: 0.6,
                    val_acc: acc,
                    ..Default::default()
                },
            ],
            fingerprint: Some(pb::Fingerprint {
                id: fp.into(),
                device_name: format!("dev-{fp}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[test]
fn repeats_aggregate_and_fingerprints_split() {
    let mut failed = trial("t4", "c", "fp1", 0.0, 0.0);
    failed.result = None;
    failed.state = TrialState::Failed;
    failed.failure = "oom".into();
    let rows = vec![
        trial("t1", "a", "fp1", 0.5, 1.0),
        trial("t2", "a", "fp1", 0.7, 3.0),
        trial("t3", "a", "fp2", 0.9, 2.0),
        failed,
    ];
    let r = build("s", &rows);
    assert_eq!(
        r.sections.len(),
        2,
        "timings from two machines never share a table"
    );
    let a = &r.sections[0].rows[0];
    assert_eq!(a.repeats, 2);
    let acc = a.max_val_acc.unwrap();
    assert!((acc.mean - 60.0).abs() < 1e-9 && (acc.std - 14.142135623730951).abs() < 1e-9);
    assert_eq!(r.unfinished.len(), 1);
    let md = table::markdown(&r);
    assert!(md.contains("60.00 ± 14.14"), "{md}");
    assert!(md.contains("dev-fp2"), "{md}");
    assert!(md.contains("| t4 "), "{md}");
    let csv = table::csv(&r);
    assert_eq!(csv.lines().count(), 3);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("fingerprint,device,label"));
    let back: serde_json::Value = serde_json::from_str(&table::json(&r)).unwrap();
    assert_eq!(back["sections"][1]["rows"][0]["repeats"], 1);
}

/// A plot drawn from trials into a file.
type Plot<'a> = dyn Fn(&[TrialRow], &std::path::Path) -> Result<(), plot::PlotError> + 'a;

#[test]
fn plots_are_valid_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stopped = trial("t3", "c", "fp1", 0.2, 1.0);
    stopped.result = None;
    stopped.state = TrialState::StoppedEarly;
    let rows = vec![
        trial("t1", "a", "fp1", 0.5, 1.0),
        trial("t2", "b", "fp1", 0.7, 3.0),
        stopped,
    ];
    let recorded: search::Histories = [("t3".to_string(), vec![epoch(1, 0.2)])].into();
    let curves = |rows: &[TrialRow], p: &std::path::Path| plot::curves(rows, &recorded, p);
    let latency = |rows: &[TrialRow], p: &std::path::Path| plot::accuracy_vs_latency(rows, p);
    let plots: [(&str, &Plot<'_>); 2] = [("curves.svg", &curves), ("latency.svg", &latency)];
    for (name, f) in plots {
        let p = tmp.path().join(name);
        f(&rows, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants()
                .any(|n| n.tag_name().name() == "polyline" || n.tag_name().name() == "circle"),
            "{name} draws data"
        );
    }
}

fn epoch(e: u32, val_acc: f64) -> pb::EpochMetrics {
    pb::EpochMetrics {
        epoch: e,
        val_acc,
        ..Default::default()
    }
}

#[test]
fn a_search_summary_counts_epochs_against_the_grid_and_names_the_best() {
    use crate::search::{SearchDef, SearchKind};
    let def = SearchDef {
        kind: SearchKind::Asha,
        ..SearchDef::default()
    };
    let mut a = trial("t1", "a", "fp1", 0.5, 1.0);
    a.epochs = 9;
    a.result = None;
    a.state = TrialState::StoppedEarly;
    let mut b = trial("t2", "b", "fp1", 0.7, 1.0);
    b.epochs = 9;
    b.result = None;
    b.state = TrialState::StoppedEarly;
    let recorded: search::Histories = [
        ("t1".to_string(), vec![epoch(1, 0.35)]),
        (
            "t2".to_string(),
            (1..=3).map(|e| epoch(e, 0.1 * f64::from(e))).collect(),
        ),
    ]
    .into();
    assert!(search::summarize(&SearchDef::default(), &[a.clone()], &recorded).is_none());
    let s = search::summarize(&def, &[a, b], &recorded).unwrap();
    assert_eq!((s.epochs_run, s.grid_epochs), (4, 18));
    assert_eq!(s.trials[0].rung, Some(1));
    assert_eq!(s.trials[1].rung, Some(2));
    let best = s.best.clone().unwrap();
    assert_eq!((best.0.as_str(), best.2), ("model-a", 1));
    let md = search::markdown(&s);
    assert!(
        md.contains("Epochs run: 4 of the 18 a grid would run (22%)"),
        "{md}"
    );
}

fn evaluation(id: &str, source: &str, fp: &str, acc: f64, p50: f64) -> crate::store::EvaluationRow {
    crate::store::EvaluationRow {
        eval_id: id.into(),
        source_trial: source.into(),
        host: format!("http://{fp}:1"),
        request: pb::EvaluationSpec::default(),
        state: TrialState::Succeeded,
        failure: String::new(),
        message: String::new(),
        result: Some(pb::EvaluationResult {
            val_acc: Some(acc),
            params: 1_000_000,
            batch1: Some(pb::Batch1Timing {
                p50_ms: p50,
                ..Default::default()
            }),
            fingerprint: Some(pb::Fingerprint {
                id: fp.into(),
                device_name: format!("dev-{fp}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[test]
fn evaluations_get_a_section_per_fingerprint_that_measured_them() {
    let trials = vec![trial("t1", "c1", "gpu", 0.8, 1.0)];
    let evals = vec![
        evaluation("e1", "t1", "cpu", 0.8, 7.0),
        evaluation("e2", "t1", "laptop", 0.8, 9.0),
        evaluation("e3", "t1", "cpu", 0.8, 5.0),
        // Not one of the sweep's trials: left out.
        evaluation("e4", "elsewhere", "cpu", 0.1, 1.0),
    ];
    let secs = evaluations::sections(&trials, &evals);
    assert_eq!(secs.len(), 2);
    assert_eq!(secs[0].fingerprint, "cpu");
    let row = &secs[0].rows[0];
    assert_eq!((row.repeats, row.label.as_str()), (2, "model-c1"));
    assert_eq!(row.p50_ms.unwrap().mean, 6.0);
    assert!((row.max_val_acc.unwrap().mean - 80.0).abs() < 1e-9);
    let mut rep = build("s", &trials);
    rep.evaluations = secs;
    let md = table::markdown(&rep);
    assert!(md.contains("### Evaluated on dev-cpu"), "{md}");
    assert!(md.contains("### Evaluated on dev-laptop"), "{md}");
    assert!(md.contains("val acc %"), "{md}");
}
