//! SVG plots: per-trial training and validation accuracy curves (the published
//! figures; a one-epoch collapse shows; a search's stops marked), and accuracy against batch-1 latency for
//! the whole sweep.

use std::path::Path;

use plotters::prelude::*;
use vov_proto::pb;

use super::search::{history, Histories};
use crate::store::{TrialRow, TrialState};

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {message}")]
pub struct PlotError {
    /// The file.
    pub path: String,
    /// What failed.
    pub message: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// File name of the accuracy curves.
pub const CURVES: &str = "curves.svg";
/// File name of accuracy against batch-1 latency.
pub const ACCURACY_VS_LATENCY: &str = "accuracy_vs_latency.svg";

/// Writes an SVG drawn in memory to `path`.
fn write(path: &Path, svg: Result<String, PlotError>) -> Result<(), PlotError> {
    std::fs::write(path, svg?).map_err(|e| err(path, e))
}

/// [`curves_svg`] written to `path`.
pub fn curves(trials: &[TrialRow], recorded: &Histories, path: &Path) -> Result<(), PlotError> {
    write(path, curves_svg(trials, recorded))
}

/// [`accuracy_vs_latency_svg`] written to `path`.
pub fn accuracy_vs_latency(trials: &[TrialRow], path: &Path) -> Result<(), PlotError> {
    write(path, accuracy_vs_latency_svg(trials))
}

/// Accuracy curves of every trial with a result or stopped by a search:
/// validation solid, training dashed; a cross marks where a search stopped one.
pub fn curves_svg(trials: &[TrialRow], recorded: &Histories) -> Result<String, PlotError> {
    let path = Path::new(CURVES);
    let mut svg = String::new();
    let done: Vec<(&TrialRow, &[pb::EpochMetrics])> = trials
        .iter()
        .filter(|t| t.result.is_some() || t.state == TrialState::StoppedEarly)
        .map(|t| (t, history(t, recorded)))
        .collect();
    let epochs = done
        .iter()
        .filter_map(|(_, h)| h.last().map(|m| m.epoch as usize))
        .max()
        .unwrap_or(1)
        .max(2);
    let root = SVGBackend::with_string(&mut svg, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Accuracy per epoch (validation solid, training dashed)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(1f64..epochs as f64, 0f64..100f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy %")
        .draw()
        .map_err(|e| err(path, e))?;
    for (i, (t, history)) in done.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let val: Vec<(f64, f64)> = history
            .iter()
            .map(|m| (f64::from(m.epoch), m.val_acc * 100.0))
            .collect();
        let train: Vec<(f64, f64)> = history
            .iter()
            .map(|m| (f64::from(m.epoch), m.train_acc * 100.0))
            .collect();
        if t.state == TrialState::StoppedEarly {
            let last = val.last().copied();
            chart
                .draw_series(last.map(|p| Cross::new(p, 6, color.stroke_width(2))))
                .map_err(|e| err(path, e))?;
        }
        let label = format!("{} #{}", t.label, t.repeat);
        chart
            .draw_series(LineSeries::new(val, color.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(DashedLineSeries::new(train, 4, 4, color.stroke_width(1)))
            .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    drop(chart);
    drop(root);
    Ok(svg)
}

/// Max validation accuracy against batch-1 median latency, one point per trial.
pub fn accuracy_vs_latency_svg(trials: &[TrialRow]) -> Result<String, PlotError> {
    let path = Path::new(ACCURACY_VS_LATENCY);
    let mut svg = String::new();
    let points: Vec<(String, f64, f64)> = trials
        .iter()
        .filter_map(|t| {
            let r = t.result.as_ref()?;
            Some((
                t.label.clone(),
                r.batch1.as_ref()?.p50_ms,
                r.max_val_acc * 100.0,
            ))
        })
        .collect();
    let max_ms = points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.15;
    let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Max validation accuracy vs batch-1 latency",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max_ms, 0f64..100f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("batch-1 latency, p50 ms")
        .y_desc("max validation accuracy %")
        .draw()
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(points.iter().enumerate().map(|(i, (label, x, y))| {
            let color = Palette99::pick(i).to_rgba();
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 5, color.filled())
                + Text::new(label.clone(), (7, -7), ("sans-serif", 12))
        }))
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    drop(chart);
    drop(root);
    Ok(svg)
}
