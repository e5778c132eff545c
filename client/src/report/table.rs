//! The report as a Markdown table (the published columns), CSV or JSON.

use super::{Report, Row, Stat};

/// The published columns.
pub const HEADER: [&str; 10] = [
    "model",
    "n",
    "MaxValAcc %",
    "train s/ep",
    "train s/ep (pipeline)",
    "real-time inf. s",
    "p50 ms",
    "p99 ms",
    "batch inf. s",
    "Params (M)",
];

fn cell(s: Option<Stat>, prec: usize) -> String {
    match s {
        None => "n/a".into(),
        Some(s) if s.n > 1 => format!("{:.prec$} ± {:.prec$}", s.mean, s.std),
        Some(s) => format!("{:.prec$}", s.mean),
    }
}

/// A row's cells under [`HEADER`], as every rendering of the table shows them.
pub fn cells(r: &Row) -> Vec<String> {
    vec![
        r.label.clone(),
        r.repeats.to_string(),
        cell(r.max_val_acc, 2),
        cell(r.train_s, 2),
        cell(r.pipeline_s, 2),
        cell(r.batch1_s, 2),
        cell(r.p50_ms, 3),
        cell(r.p99_ms, 3),
        cell(r.batch32_s, 3),
        r.params_m.map_or("n/a".into(), |p| format!("{p:.3}")),
    ]
}

/// Rows under a header as an aligned Markdown table: every human table vovctl
/// prints goes through here (comfy-table, Markdown borders).
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for r in rows {
        t.add_row(r.iter().map(String::as_str));
    }
    t.to_string() + "\n"
}

/// The report in Markdown: one table per fingerprint, then unfinished trials.
pub fn markdown(report: &Report) -> String {
    let mut out = format!("## Sweep {}\n\n", report.sweep);
    if report.sections.is_empty() {
        out += "No results yet.\n\n";
    }
    for s in &report.sections {
        out += &format!(
            "### {} — {} (fingerprint {}, vovd {})\n\n",
            s.device, s.cpu, s.fingerprint, s.version
        );
        out += &markdown_table(&HEADER, &s.rows.iter().map(cells).collect::<Vec<_>>());
        out += "\n";
    }
    for s in &report.evaluations {
        out += &format!(
            "### Evaluated on {} — {} (fingerprint {}, vovd {})\n\n",
            s.device, s.cpu, s.fingerprint, s.version
        );
        let rows: Vec<Vec<String>> = s.rows.iter().map(super::evaluations::cells).collect();
        out += &markdown_table(&super::evaluations::HEADER, &rows);
        out += "\n";
    }
    if !report.unfinished.is_empty() {
        out += "### Without a result\n\n";
        let rows: Vec<Vec<String>> = report
            .unfinished
            .iter()
            .map(|u| {
                vec![
                    u.trial.clone(),
                    u.label.clone(),
                    u.state.clone(),
                    u.failure.clone(),
                    u.message.clone(),
                ]
            })
            .collect();
        out += &markdown_table(&["trial", "config", "state", "failure", "message"], &rows);
    }
    if let Some(s) = &report.search {
        out += "\n";
        out += &super::search::markdown(s);
    }
    out
}

/// The report as CSV: one line per configuration and fingerprint, raw numbers.
pub fn csv(report: &Report) -> String {
    let stat_cols = [
        "max_val_acc_pct",
        "train_s_per_epoch",
        "pipeline_s_per_epoch",
        "batch1_total_s",
        "batch1_p50_ms",
        "batch1_p99_ms",
        "batch32_total_s",
    ];
    let mut header = vec![
        "fingerprint".to_string(),
        "device".into(),
        "label".into(),
        "model".into(),
        "config_id".into(),
        "n".into(),
    ];
    for c in stat_cols {
        header.push(format!("{c}_mean"));
        header.push(format!("{c}_std"));
    }
    header.push("params_m".into());
    let mut out = csv::Writer::from_writer(Vec::new());
    let num = |s: Option<Stat>| match s {
        Some(s) => [s.mean.to_string(), s.std.to_string()],
        None => [String::new(), String::new()],
    };
    // Writing to memory cannot fail.
    let _ = out.write_record(&header);
    for sec in &report.sections {
        for r in &sec.rows {
            let mut f = vec![
                sec.fingerprint.clone(),
                sec.device.clone(),
                r.label.clone(),
                r.model.clone(),
                r.config_id.clone(),
                r.repeats.to_string(),
            ];
            for s in [
                r.max_val_acc,
                r.train_s,
                r.pipeline_s,
                r.batch1_s,
                r.p50_ms,
                r.p99_ms,
                r.batch32_s,
            ] {
                f.extend(num(s));
            }
            f.push(r.params_m.map(|p| p.to_string()).unwrap_or_default());
            let _ = out.write_record(&f);
        }
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}
