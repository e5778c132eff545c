//! Printing: aligned tables and JSON on stdout, where a closed pipe is not an error.

use std::io::Write;

use serde::Serialize;

use super::CliError;

fn write_out(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `vovd models | head -1`: the reader left; that is not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Failed(format!("writing to stdout: {e}"))),
    }
}

/// Prints `text` as it is.
pub(super) fn print_text(text: &str) -> Result<(), CliError> {
    write_out(text)
}

/// Prints `value` as pretty JSON and a newline.
pub(super) fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    write_out(&(text + "\n"))
}

/// Formats rows under a header as a Markdown table with aligned columns: every
/// table vovd prints goes through here (comfy-table, Markdown borders).
pub(super) fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for r in rows {
        t.add_row(r.iter().map(String::as_str));
    }
    t.to_string() + "\n"
}

/// Prints a Markdown table.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
    write_out(&format_table(header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_aligned_markdown() {
        let t = format_table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "| a   | bb |\n|-----|----|\n| xyz | 1  |\n");
    }
}
