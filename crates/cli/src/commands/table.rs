//! Tables for people (aligned columns under a header, no borders, so a
//! line splits on whitespace) and CSV for programs (RFC 4180 quoting).

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

/// A table with `header`; the columns named in `right` are right-aligned
/// (numbers).
pub fn new(header: &[&str], right: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for (i, name) in header.iter().enumerate() {
        if right.contains(name)
            && let Some(column) = table.column_mut(i)
        {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Prints `table` to stdout, each line without trailing blanks.
pub fn print(table: &Table) {
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
}

/// `text` cut to `max` characters, with `…` when it was longer.
pub fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// CSV rows to stdout.
pub struct Csv(csv::Writer<std::io::Stdout>);

impl Csv {
    pub fn new(header: &[&str]) -> anyhow::Result<Csv> {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        w.write_record(header)?;
        Ok(Csv(w))
    }

    pub fn row<I, T>(&mut self, cells: I) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.0.write_record(cells)?;
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.0.flush()?;
        Ok(())
    }
}
