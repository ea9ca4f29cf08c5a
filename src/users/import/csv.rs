//! Reading the upload: CSV on a blocking thread, CRLF as LF, the header
//! checked against the named columns, rows sent on in batches.

use std::{
    collections::HashMap,
    io::{BufReader, Read},
};

use tokio::sync::mpsc;

use super::{BATCH, ImportRow, OPTIONAL, Parsed, REQUIRED};
use crate::error::{Reason, Result};

/// Reads the CSV on a blocking thread and sends its header and rows in
/// batches; stops early when the receiver is gone.
pub(super) fn read_csv(file: impl Read, sender: &mpsc::Sender<Parsed>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(CrlfToLf::new(BufReader::new(file)));
    let mut record = csv::ByteRecord::new();
    let mut header = true;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                let _ = sender.blocking_send(Parsed::Fatal(format!("not a CSV file: {err}")));
                return;
            }
        }
        let line_no = record.position().map_or(0, |p| p.line());
        if header {
            header = false;
            let parsed = parse_header(&record);
            let fatal = matches!(parsed, Parsed::Fatal(_));
            if sender.blocking_send(parsed).is_err() || fatal {
                return;
            }
            continue;
        }
        if record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let cells = record
            .iter()
            .map(|c| std::str::from_utf8(c).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("{}: the line is not UTF-8", Reason::InvalidText))
            .and_then(|cells| match cells.iter().any(|c| c.contains('\0')) {
                true => Err(format!(
                    "{}: the line holds NUL (U+0000)",
                    Reason::InvalidText
                )),
                false => Ok(cells),
            });
        batch.push(ImportRow { line_no, cells });
        if batch.len() == BATCH
            && sender
                .blocking_send(Parsed::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(Parsed::Rows(batch));
    }
}

/// Turns CRLF line ends into LF: the CSV reader numbers lines of CRLF
/// files one short, and report lines must name the line people see.
pub(super) struct CrlfToLf<R> {
    inner: R,
    /// A CR that ended the previous read, not yet known to precede an LF.
    held_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            held_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.len() < 2 {
            return self.inner.read(out);
        }
        // Leave room for a held CR that turns out not to precede an LF.
        let n = self.inner.read(&mut out[1..])?;
        let mut written = 0;
        let mut i = 1;
        if self.held_cr {
            self.held_cr = false;
            if n == 0 || out[1] != b'\n' {
                out[0] = b'\r';
                written = 1;
            }
        }
        while i <= n {
            let byte = out[i];
            i += 1;
            if byte == b'\r' {
                if i > n {
                    self.held_cr = true;
                    continue;
                }
                if out[i] == b'\n' {
                    continue;
                }
            }
            out[written] = byte;
            written += 1;
        }
        if written == 0 && self.held_cr && n > 0 {
            // Only a CR was read: read on, so 0 still means the end.
            return self.read(out);
        }
        Ok(written)
    }
}

pub(super) fn parse_header(record: &csv::ByteRecord) -> Parsed {
    let mut columns = HashMap::new();
    let mut ignored = Vec::new();
    let mut found = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            return Parsed::Fatal("the header row is not UTF-8".into());
        };
        if name.contains('\0') {
            return Parsed::Fatal("the header row (line 1) holds NUL (U+0000)".into());
        }
        let name = name.trim_start_matches('\u{feff}').trim().to_lowercase();
        if !name.is_empty() {
            found.push(name.clone());
        }
        match REQUIRED.iter().chain(OPTIONAL.iter()).find(|c| **c == name) {
            Some(known) => {
                columns.insert(*known, i);
            }
            None if name.is_empty() => {}
            None => ignored.push(name),
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|c| !columns.contains_key(*c))
        .copied()
        .collect();
    if !missing.is_empty() {
        let found = if found.is_empty() {
            "no column".to_owned()
        } else {
            found.join(", ")
        };
        return Parsed::Fatal(format!(
            "the header row lacks the columns {}; it names {found}; expected {} (and optionally {})",
            missing.join(", "),
            REQUIRED.join(", "),
            OPTIONAL.join(", "),
        ));
    }
    Parsed::Header { columns, ignored }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(csv: &str) -> Vec<u64> {
        let (sender, mut receiver) = mpsc::channel(16);
        read_csv(csv.as_bytes(), &sender);
        drop(sender);
        let mut lines = Vec::new();
        while let Ok(parsed) = receiver.try_recv() {
            if let Parsed::Rows(rows) = parsed {
                lines.extend(rows.iter().map(|r| r.line_no));
            }
        }
        lines
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on() {
        let header = "first_name,last_name,login_id,email";
        assert_eq!(lines_of(&format!("{header}\na,b,,c\nd,e,,f\n")), vec![2, 3]);
        assert_eq!(
            lines_of(&format!("{header}\r\na,b,,c\r\nd,e,,f\r\n")),
            vec![2, 3]
        );
        assert_eq!(
            lines_of(&format!("{header}\n\"a\nb\",b,,c\nd,e,,f\n")),
            vec![2, 4]
        );
        assert_eq!(
            lines_of(&format!(
                "{header}\r\n\"x, y\",\"q\"\"q\",,c\r\n\"a\nb\",b,,c\r\nd,e,,f\r\n"
            )),
            vec![2, 3, 5]
        );
    }

    #[test]
    fn crlf_becomes_lf_across_reads_and_a_lone_cr_stays() {
        for chunk in 1..6 {
            let input = b"a\r\nb\rc\r\n\r";
            let mut reader = CrlfToLf::new(std::io::Read::chain(
                &input[..chunk.min(input.len())],
                &input[chunk.min(input.len())..],
            ));
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"a\nb\rc\n\r", "chunk {chunk}");
        }
    }
}
