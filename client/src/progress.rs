//! Showing a sweep as it runs: bars on a terminal, plain lines otherwise, or one
//! JSON object per line for scripts.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::store::TrialState;

/// Something that happened to a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UiEvent {
    /// The plan: trial counts.
    Plan {
        /// Trials in the sweep.
        trials: usize,
        /// Already finished (skipped).
        finished: usize,
        /// Hosts in use.
        hosts: Vec<String>,
        /// Epochs still to train.
        epochs: u64,
    },
    /// A trial was placed on a host.
    Placed {
        /// The trial.
        trial: String,
        /// Its label.
        label: String,
        /// The host.
        host: String,
        /// Placement number.
        attempt: u32,
    },
    /// A trial changed state.
    State {
        /// The trial.
        trial: String,
        /// Its label.
        label: String,
        /// New state.
        state: String,
        /// Failure class, when failed.
        failure: String,
        /// Details.
        message: String,
    },
    /// A trial finished an epoch.
    Epoch {
        /// The trial.
        trial: String,
        /// The epoch.
        epoch: u32,
        /// Epochs in the trial.
        epochs: u32,
        /// Validation accuracy.
        val_acc: f64,
    },
    /// A host stopped answering (its trials go elsewhere) or came back.
    Host {
        /// The host.
        host: String,
        /// `lost` or `back`.
        status: String,
    },
    /// Totals.
    Counts {
        /// Finished successfully.
        done: usize,
        /// Running.
        running: usize,
        /// Failed or cancelled.
        failed: usize,
        /// Waiting on a host or not placed.
        queued: usize,
    },
}

/// Where progress goes.
pub trait Ui: Send {
    /// Shows an event.
    fn show(&mut self, event: &UiEvent);
    /// Clears anything drawn before the final output.
    fn finish(&mut self) {}
}

/// One JSON object per line on stdout.
pub struct JsonUi;

impl Ui for JsonUi {
    fn show(&mut self, event: &UiEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            // A closed pipe is not an error: the reader left.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
}

/// Plain lines on stderr for state changes and host events (not a terminal).
pub struct PlainUi;

impl Ui for PlainUi {
    fn show(&mut self, event: &UiEvent) {
        let line = match event {
            UiEvent::Plan {
                trials,
                finished,
                hosts,
                ..
            } => {
                format!(
                    "sweep: {trials} trials, {finished} already finished, hosts: {}",
                    hosts.join(", ")
                )
            }
            UiEvent::Placed {
                trial,
                label,
                host,
                attempt,
            } => format!("{trial} {label}: placed on {host} (attempt {attempt})"),
            UiEvent::State {
                trial,
                label,
                state,
                failure,
                message,
            } if failure.is_empty() => {
                format!(
                    "{trial} {label}: {state}{}",
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({message})")
                    }
                )
            }
            UiEvent::State {
                trial,
                label,
                state,
                failure,
                message,
            } => format!("{trial} {label}: {state} [{failure}] {message}"),
            UiEvent::Host { host, status } => format!("host {host}: {status}"),
            UiEvent::Epoch { .. } | UiEvent::Counts { .. } => return,
        };
        eprintln!("{line}");
    }
}

/// An overall bar and one line per running trial, on a terminal.
pub struct TtyUi {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: HashMap<String, ProgressBar>,
    labels: HashMap<String, String>,
}

impl TtyUi {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:32}] {pos}/{len} epochs  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(500));
        TtyUi {
            multi,
            overall,
            lines: HashMap::new(),
            labels: HashMap::new(),
        }
    }

    fn line(&mut self, trial: &str) -> &ProgressBar {
        let multi = &self.multi;
        self.lines.entry(trial.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        })
    }
}

impl Default for TtyUi {
    fn default() -> Self {
        Self::new()
    }
}

impl Ui for TtyUi {
    fn show(&mut self, event: &UiEvent) {
        match event {
            UiEvent::Plan { epochs, .. } => {
                self.overall.set_length(*epochs);
                self.overall.set_prefix("sweep");
            }
            UiEvent::Placed {
                trial, label, host, ..
            } => {
                self.labels.insert(trial.clone(), label.clone());
                let text = format!("{trial} {label} @ {host}: queued");
                self.line(trial).set_message(text);
            }
            UiEvent::State {
                trial,
                state,
                failure,
                message,
                ..
            } => {
                let label = self.labels.get(trial).cloned().unwrap_or_default();
                if TrialState::Running.as_str() == state {
                    let text = format!("{trial} {label}: running");
                    self.line(trial).set_message(text);
                } else if let Some(bar) = self.lines.remove(trial) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                    if !failure.is_empty() {
                        let _ = self
                            .multi
                            .println(format!("{trial} {label}: {state} [{failure}] {message}"));
                    }
                }
            }
            UiEvent::Epoch {
                trial,
                epoch,
                epochs,
                val_acc,
            } => {
                self.overall.inc(1);
                let label = self.labels.get(trial).cloned().unwrap_or_default();
                let text = format!(
                    "{trial} {label}: epoch {epoch}/{epochs}  val {:.2}%",
                    val_acc * 100.0
                );
                self.line(trial).set_message(text);
            }
            UiEvent::Host { host, status } => {
                let _ = self.multi.println(format!("host {host}: {status}"));
            }
            UiEvent::Counts {
                done,
                running,
                failed,
                queued,
            } => {
                self.overall.set_message(format!(
                    "{done} done, {running} running, {failed} failed, {queued} queued"
                ));
            }
        }
    }

    fn finish(&mut self) {
        for (_, bar) in self.lines.drain() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
