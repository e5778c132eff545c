//! The files a report consists of: what `vovctl report --out DIR` writes and
//! what the dashboard offers for download, each with its content type and how
//! it is made from a sweep's report, trials and recorded epochs.

use super::search::Histories;
use super::{plot, table, Report};
use crate::store::TrialRow;

/// One file of a report.
#[derive(Debug, Clone, Copy)]
pub struct ReportFile {
    /// Its name.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// How its text is made.
    pub make: fn(&Report, &[TrialRow], &Histories) -> Result<String, plot::PlotError>,
}

/// Every file of a report, in the order they are listed.
pub const FILES: &[ReportFile] = &[
    ReportFile {
        name: "report.md",
        content_type: "text/markdown; charset=utf-8",
        make: |rep, _, _| Ok(table::markdown(rep)),
    },
    ReportFile {
        name: "report.csv",
        content_type: "text/csv; charset=utf-8",
        make: |rep, _, _| Ok(table::csv(rep)),
    },
    ReportFile {
        name: "report.json",
        content_type: "application/json",
        make: |rep, _, _| Ok(table::json(rep)),
    },
    ReportFile {
        name: plot::CURVES,
        content_type: "image/svg+xml",
        make: |_, rows, recorded| plot::curves_svg(rows, recorded),
    },
    ReportFile {
        name: plot::ACCURACY_VS_LATENCY,
        content_type: "image/svg+xml",
        make: |_, rows, _| plot::accuracy_vs_latency_svg(rows),
    },
];

/// The file named `name`.
pub fn find(name: &str) -> Option<&'static ReportFile> {
    FILES.iter().find(|f| f.name == name)
}

/// The files' names as a sentence ("a, b and c").
pub fn names() -> String {
    let names: Vec<&str> = FILES.iter().map(|f| f.name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_distinct_name() {
        let mut names: Vec<&str> = FILES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FILES.len());
        assert!(find("report.csv").is_some() && find("nope").is_none());
        assert!(super::names().ends_with(" and accuracy_vs_latency.svg"));
    }
}
