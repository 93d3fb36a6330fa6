//! Text tables, the one home of column widths and padding for both forms
//! explore prints: markdown (report.md, `explore check`'s verdicts),
//! readable as plain text too, and aligned columns for a terminal
//! (`explore count`, `explore he-bench`).

/// Each column's width: its widest cell or header, at least `min`.
fn widths(header: &[&str], rows: &[Vec<String>], min: usize) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(min)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// A markdown table with padded columns, readable as plain text too.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    // Markdown needs at least three dashes under each header.
    let widths = widths(header, rows, 3);
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let mut out = line(&header) + &line(&rule);
    for row in rows {
        out += &line(row);
    }
    out
}

/// Columns two spaces apart for a terminal: the first (a name) left-aligned,
/// the others (numbers) right-aligned.
pub fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths = widths(header, rows, 0);
    let line = |cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, &w))| {
                if c == 0 {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        parts.join("  ") + "\n"
    };
    let mut out = line(header);
    for row in rows {
        out += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec!["conv1".into(), "12".into()],
            vec!["stage3.fc".into(), "3".into()],
        ]
    }

    #[test]
    fn a_markdown_table_pads_every_column_to_its_widest_cell() {
        assert_eq!(
            markdown(&["layer", "n"], &rows()),
            "| layer     | n   |\n\
             | --------- | --- |\n\
             | conv1     | 12  |\n\
             | stage3.fc | 3   |\n"
        );
    }

    #[test]
    fn aligned_columns_put_names_left_and_numbers_right() {
        assert_eq!(
            aligned(&["layer", "rotations"], &rows()),
            "layer      rotations\n\
             conv1             12\n\
             stage3.fc          3\n"
        );
    }
}
