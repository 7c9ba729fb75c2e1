//! One CSV file as the profiles read it: decoded to UTF-8, its header, and its records with the
//! line each starts on.
//!
//! Decisions:
//! - Encoding: a byte-order mark decides (UTF-8, UTF-16LE/BE; the mark is dropped). Without
//!   one, `auto` reads the file as UTF-8 when it is valid UTF-8 and otherwise as GBK (decoded
//!   as GB18030, its superset), the usual encoding of Chinese CRMs' exports, and says so in a
//!   note; any other WHATWG label (`--encoding windows-1252`) is used as given. Bytes that are
//!   not valid in the chosen encoding refuse the file, naming the line: nothing is replaced
//!   by `�` silently.
//! - Separator: `--delimiter`, else the most frequent of `,` `;` tab `|` outside quotes in
//!   the header line (`,` when none appears).
//! - Parsing is the `csv` crate's (RFC 4180 quotes, embedded newlines, `""` escapes); fields
//!   and headers are trimmed; a record with another number of fields than the header is a
//!   problem of its line.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use csv::StringRecord;
use encoding_rs::{Encoding, GBK, UTF_8};
use indicatif::ProgressBar;

use super::{Origin, Problem, Problems};
use crate::cli::CliError;

/// How the files of one import are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The field separator; `None` = sniffed from each file's header line.
    pub delimiter: Option<u8>,
    /// `None` or `auto` = UTF-8, else GBK; otherwise a WHATWG encoding label.
    pub encoding: Option<String>,
    /// Extra `chrono` formats for dates and times, tried before the built-in ones.
    pub date_formats: Vec<String>,
    /// The offset of times and dates written without one (UTC by default).
    pub utc_offset: chrono::FixedOffset,
    /// Advanced by the bytes read (hidden unless stderr is a terminal).
    pub progress: ProgressBar,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            delimiter: None,
            encoding: None,
            date_formats: Vec::new(),
            utc_offset: chrono::FixedOffset::east_opt(0).expect("zero offset"),
            progress: ProgressBar::hidden(),
        }
    }
}

/// A decoded CSV file, ready to be read record by record.
pub struct Table {
    pub name: Arc<str>,
    pub headers: Vec<String>,
    /// Said once to the user, e.g. that a file was read as GBK.
    pub note: Option<String>,
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// The bytes the reader reads in all (for the progress bar).
    bytes: u64,
    progress: ProgressBar,
    reported: u64,
}

/// One record of a table, with its line for messages.
pub struct Row<'a> {
    /// The file's name, shared by every [`Origin`] made from its rows.
    pub table: &'a Arc<str>,
    pub headers: &'a [String],
    pub line: u64,
    pub record: &'a StringRecord,
}

impl Row<'_> {
    /// The trimmed text of a column (empty when the record is short).
    pub fn get(&self, column: usize) -> &str {
        self.record.get(column).unwrap_or("")
    }

    /// The text of an optional column: `None` when the column is absent or the cell empty.
    pub fn opt(&self, column: Option<usize>) -> Option<&str> {
        column.map(|c| self.get(c)).filter(|s| !s.is_empty())
    }

    /// A problem with one cell of this row.
    pub fn problem(&self, column: usize, why: impl Into<String>) -> Problem {
        Problem {
            file: Arc::clone(self.table),
            line: self.line,
            column: Some((
                column + 1,
                self.headers.get(column).cloned().unwrap_or_default(),
            )),
            why: why.into(),
        }
    }

    /// Parses a cell, turning the parser's message into a problem naming the cell.
    pub fn parse<T>(
        &self,
        column: usize,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Problem> {
        f(self.get(column)).map_err(|why| self.problem(column, why))
    }

    /// A cell that must not be empty.
    pub fn required(&self, column: usize) -> Result<&str, Problem> {
        match self.get(column) {
            "" => Err(self.problem(column, "is empty")),
            s => Ok(s),
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            file: Arc::clone(self.table),
            line: self.line,
        }
    }
}

impl Table {
    /// Reads and decodes a file (`-` = stdin).
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Table, TableError> {
        if path.as_os_str() != "-" {
            if let Some(table) = Table::streamed(path, opts)? {
                return Ok(table);
            }
        }
        let (name, bytes): (Arc<str>, Vec<u8>) = if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
                TableError::Io(CliError::failure(format!("cannot read stdin: {e}")))
            })?;
            ("<stdin>".into(), bytes)
        } else {
            let bytes = std::fs::read(path).map_err(|e| {
                TableError::Io(CliError::failure(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            })?;
            (path.display().to_string().into(), bytes)
        };
        Table::from_bytes(name, bytes, opts).map_err(TableError::Refused)
    }

    /// A file read as UTF-8 (`auto` or `utf-8` asked, no byte-order mark but UTF-8's, and
    /// every byte valid UTF-8, checked first as the file streams by) is parsed from the disk
    /// as it is read instead of held in memory, decoded (a 1 M-row history is 83 MB). `None`:
    /// it is not such a file; [`Table::from_bytes`] reads it whole and says why.
    fn streamed(path: &Path, opts: &ReadOptions) -> Result<Option<Table>, TableError> {
        let label = opts.encoding.as_deref().unwrap_or("auto").trim();
        let utf8 = label.eq_ignore_ascii_case("auto")
            || Encoding::for_label(label.as_bytes()) == Some(UTF_8);
        if !utf8 {
            return Ok(None);
        }
        let io = |e: std::io::Error| {
            TableError::Io(CliError::failure(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut head = Vec::with_capacity(3);
        file.by_ref().take(3).read_to_end(&mut head).map_err(io)?;
        let start = match Encoding::for_bom(&head) {
            None => 0,
            Some((encoding, bom)) if encoding == UTF_8 => bom as u64,
            Some(_) => return Ok(None),
        };
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        if !is_utf8(&mut file).map_err(io)? {
            return Ok(None);
        }
        let bytes = file
            .seek(SeekFrom::End(0))
            .map_err(io)?
            .saturating_sub(start);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        // The header line (and more) for the separator's sniffing: what the buffer holds.
        let buffered = reader.fill_buf().map_err(io)?;
        let valid = match std::str::from_utf8(buffered) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&buffered[..e.valid_up_to()]).unwrap_or_default(),
        };
        let delimiter = opts.delimiter.unwrap_or_else(|| sniff_delimiter(valid));
        let name: Arc<str> = path.display().to_string().into();
        let reader: Box<dyn Read + Send> = Box::new(reader);
        Table::with_reader(name, reader, bytes, delimiter, None, opts)
            .map(Some)
            .map_err(TableError::Refused)
    }

    /// Decodes `bytes` and reads the header line.
    pub fn from_bytes(
        name: Arc<str>,
        bytes: Vec<u8>,
        opts: &ReadOptions,
    ) -> Result<Table, Problem> {
        let at_line = |line: u64, why: String| Problem {
            file: name.clone(),
            line,
            column: None,
            why,
        };
        let (text, note) =
            decode(bytes, opts.encoding.as_deref()).map_err(|(l, w)| at_line(l, w))?;
        let delimiter = opts.delimiter.unwrap_or_else(|| sniff_delimiter(&text));
        let bytes = text.len() as u64;
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.into_bytes()));
        Table::with_reader(name, reader, bytes, delimiter, note, opts)
    }

    /// The table of UTF-8 text `reader` (`bytes` long): reads its header line.
    fn with_reader(
        name: Arc<str>,
        reader: Box<dyn Read + Send>,
        bytes: u64,
        delimiter: u8,
        note: Option<String>,
        opts: &ReadOptions,
    ) -> Result<Table, Problem> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(reader);
        let headers = reader
            .headers()
            .map_err(|e| Problem {
                file: name.clone(),
                line: 1,
                column: None,
                why: format!("cannot read the header line: {e}"),
            })?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        Ok(Table {
            note: note.map(|n| format!("{name}: {n}")),
            name,
            headers,
            reader,
            bytes,
            progress: opts.progress.clone(),
            reported: 0,
        })
    }

    /// The index of a header, compared without case.
    pub fn column(&self, header: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(header))
    }

    pub fn has(&self, header: &str) -> bool {
        self.column(header).is_some()
    }

    /// The indexes of required headers, or one problem naming those missing.
    pub fn columns<const N: usize>(
        &self,
        headers: [&str; N],
        what: &str,
    ) -> Result<[usize; N], Problem> {
        let found = headers.map(|h| self.column(h));
        let missing: Vec<&str> = headers
            .iter()
            .zip(found)
            .filter(|(_, f)| f.is_none())
            .map(|(h, _)| *h)
            .collect();
        if !missing.is_empty() {
            return Err(Problem {
                file: self.name.clone(),
                line: 1,
                column: None,
                why: format!(
                    "{what} needs the column{} {}",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.join(", ")
                ),
            });
        }
        Ok(found.map(|f| f.unwrap_or_default()))
    }

    /// Calls `f` on every record. A problem of a record (from `f`, or a malformed record) is
    /// collected and the next record read, so that one run names several problems.
    pub fn for_each_row(
        &mut self,
        problems: &mut Problems,
        mut f: impl FnMut(&Row) -> Result<(), Problem>,
    ) {
        let mut record = StringRecord::new();
        loop {
            match self.reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    let row = Row {
                        table: &self.name,
                        headers: &self.headers,
                        line,
                        record: &record,
                    };
                    if let Err(p) = f(&row) {
                        problems.push(p);
                    }
                    let byte = record.position().map_or(0, |p| p.byte());
                    if byte >= self.reported + (1 << 20) {
                        self.progress.inc(byte - self.reported);
                        self.reported = byte;
                    }
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    let why = match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => format!("has {len} fields where the header has {expected_len}"),
                        _ => format!("cannot be read as CSV: {e}"),
                    };
                    problems.push(Problem {
                        file: self.name.clone(),
                        line,
                        column: None,
                        why,
                    });
                    if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                        break;
                    }
                }
            }
        }
        self.progress.inc(self.bytes.saturating_sub(self.reported));
        self.reported = self.bytes;
    }
}

/// Why a table could not be opened: the file could not be read, or its bytes are refused.
pub enum TableError {
    Io(CliError),
    Refused(Problem),
}

/// The file's text, and a note when the encoding was guessed. Errors carry the line.
fn decode(bytes: Vec<u8>, label: Option<&str>) -> Result<(String, Option<String>), (u64, String)> {
    if let Some((encoding, bom)) = Encoding::for_bom(&bytes) {
        return strict(encoding, &bytes[bom..]).map(|t| (t, None));
    }
    match label.unwrap_or("auto") {
        l if l.eq_ignore_ascii_case("auto") => match String::from_utf8(bytes) {
            Ok(text) => Ok((text, None)),
            Err(e) => {
                let bytes = e.into_bytes();
                match GBK.decode_without_bom_handling_and_without_replacement(&bytes) {
                    Some(text) => Ok((
                        text.into_owned(),
                        Some("not UTF-8: read as GBK (give --encoding to choose another)".into()),
                    )),
                    None => Err((
                        line_of_first_invalid(&bytes),
                        "is neither UTF-8 nor GBK: give --encoding (e.g. windows-1252)".into(),
                    )),
                }
            }
        },
        l => {
            let encoding = Encoding::for_label(l.trim().as_bytes())
                .ok_or_else(|| (1, format!("unknown encoding {l:?}")))?;
            strict(encoding, &bytes).map(|t| (t, None))
        }
    }
}

/// Whether everything `r` gives is UTF-8, read 64 KiB at a time (a character may straddle
/// two reads).
fn is_utf8(r: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut carried = 0;
    loop {
        let n = r.read(&mut buf[carried..])?;
        if n == 0 {
            return Ok(carried == 0);
        }
        let len = carried + n;
        carried = match std::str::from_utf8(&buf[..len]) {
            Ok(_) => 0,
            // Cut short at the end: the character's first bytes wait for the next read.
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..len, 0);
                len - valid
            }
            Err(_) => return Ok(false),
        };
    }
}

/// Decodes without replacing anything: an invalid byte is an error naming its line.
fn strict(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, (u64, String)> {
    if encoding == UTF_8 {
        return String::from_utf8(bytes.to_vec()).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            (line_at(bytes, at), "is not valid UTF-8".to_string())
        });
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|t| t.into_owned())
        .ok_or_else(|| {
            (
                line_of_first_invalid(bytes),
                format!("is not valid {}", encoding.name()),
            )
        })
}

/// The line of the first byte that is not valid UTF-8 (the best guess where a decoder failed).
fn line_of_first_invalid(bytes: &[u8]) -> u64 {
    let at = std::str::from_utf8(bytes)
        .err()
        .map_or(0, |e| e.valid_up_to());
    line_at(bytes, at)
}

fn line_at(bytes: &[u8], at: usize) -> u64 {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

/// The most frequent candidate separator outside quotes in the first line; `,` by default.
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(d, n)| (*n, *d == b','))
        .map_or(b',', |(d, _)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8], opts: &ReadOptions) -> (Vec<String>, Vec<(u64, Vec<String>)>) {
        let mut t = Table::from_bytes("t.csv".into(), text.to_vec(), opts)
            .unwrap_or_else(|p| panic!("{p}"));
        let mut out = Vec::new();
        let mut problems = Problems::default();
        t.for_each_row(&mut problems, |r| {
            out.push((r.line, r.record.iter().map(str::to_string).collect()));
            Ok(())
        });
        assert!(problems.is_empty(), "{problems}");
        (t.headers.clone(), out)
    }

    #[test]
    fn semicolons_are_sniffed_and_a_quoted_comma_does_not_count() {
        assert_eq!(sniff_delimiter("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(sniff_delimiter("a,b\n"), b',');
        assert_eq!(sniff_delimiter("a\tb\tc\n"), b'\t');
        assert_eq!(sniff_delimiter("single\n"), b',');
    }

    #[test]
    fn a_bom_is_dropped_and_a_multi_line_field_keeps_the_lines_that_follow_right() {
        let text = "\u{feff}Id;Name\n1;\"two\nlines\"\n3;after\n";
        let (headers, rows) = rows(text.as_bytes(), &ReadOptions::default());
        assert_eq!(headers, ["Id", "Name"]);
        assert_eq!(rows[0], (2, vec!["1".into(), "two\nlines".into()]));
        assert_eq!(rows[1], (4, vec!["3".into(), "after".into()]));
    }

    /// What `open` reads from a file, streamed or whole.
    fn rows_of_file(path: &Path, opts: &ReadOptions) -> (Option<String>, Vec<Vec<String>>) {
        let Ok(mut t) = Table::open(path, opts) else {
            panic!("{} refused", path.display())
        };
        let mut out = vec![t.headers.clone()];
        let mut problems = Problems::default();
        t.for_each_row(&mut problems, |r| {
            out.push(
                std::iter::once(r.line.to_string())
                    .chain(r.record.iter().map(str::to_string))
                    .collect(),
            );
            Ok(())
        });
        assert!(problems.is_empty(), "{problems}");
        (t.note.clone(), out)
    }

    /// A UTF-8 file is parsed from the disk as it is read; what it gives is what the same
    /// bytes give held in memory: the byte-order mark dropped, the separator sniffed, a
    /// quoted field over two lines, and a character that straddles two of the check's reads.
    #[test]
    fn a_utf8_file_streamed_reads_as_its_bytes_held_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = "\u{feff}Id;Name;Note\n1;\"two\nlines\";x\n2;".to_string();
        // "é" (2 bytes) from byte 65,535 of the file: across the first 64 KiB read.
        let fill = (1 << 16) - 1 - text.len();
        text.push_str(&"a".repeat(fill));
        text.push_str("é;孙悟空\n3;after;\n");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(
            &std::fs::read(&path).unwrap()[(1 << 16) - 1..(1 << 16) + 1],
            "é".as_bytes()
        );
        assert!(is_utf8(&mut std::fs::File::open(&path).unwrap()).unwrap());
        let (note, streamed) = rows_of_file(&path, &ReadOptions::default());
        assert_eq!(note, None);
        let (headers, whole) = rows(text.as_bytes(), &ReadOptions::default());
        let whole: Vec<Vec<String>> = std::iter::once(headers)
            .chain(
                whole
                    .into_iter()
                    .map(|(line, cells)| std::iter::once(line.to_string()).chain(cells).collect()),
            )
            .collect();
        assert_eq!(streamed, whole);
        assert_eq!(streamed[0], ["Id", "Name", "Note"]);
        assert_eq!(
            streamed[2][0], "4",
            "the row after the two-line field starts on line 4"
        );
        assert!(
            streamed[2][2].ends_with("aé"),
            "{:?}",
            &streamed[2][2][fill - 2..]
        );
        // Cut inside a character, or holding a byte that is not UTF-8: not streamed.
        assert!(!is_utf8(&mut &"é".as_bytes()[..1]).unwrap());
        assert!(!is_utf8(&mut &b"ok\xff"[..]).unwrap());
    }

    #[test]
    fn a_file_that_is_not_utf8_is_read_whole_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gbk.csv");
        let mut bytes = b"owner\n".to_vec();
        bytes.extend([0xD5, 0xC5, 0xC8, 0xFD, b'\n']);
        std::fs::write(&path, &bytes).unwrap();
        let (note, rows) = rows_of_file(&path, &ReadOptions::default());
        assert!(note.unwrap_or_default().contains("GBK"));
        assert_eq!(rows[1], ["2", "张三"]);
        // UTF-16 with its mark: decoded whole too.
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a,b\n1,2\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        std::fs::write(&path, utf16).unwrap();
        let (_, rows) = rows_of_file(&path, &ReadOptions::default());
        assert_eq!(rows, [vec!["a", "b"], vec!["2", "1", "2"]]);
    }

    #[test]
    fn gbk_is_the_fallback_for_bytes_that_are_not_utf8() {
        // 张三 in GBK (GB2312 code points D5C5 C8FD), written out by hand.
        let mut bytes = b"owner\n".to_vec();
        bytes.extend([0xD5, 0xC5, 0xC8, 0xFD, b'\n']);
        let t = Table::from_bytes("t.csv".into(), bytes.clone(), &ReadOptions::default())
            .ok()
            .unwrap();
        assert!(t.note.as_deref().unwrap_or("").contains("GBK"));
        let (_, rows) = rows(&bytes, &ReadOptions::default());
        assert_eq!(rows[0].1, ["张三"]);
        // Asked for UTF-8, the same bytes are refused with their line.
        let utf8 = ReadOptions {
            encoding: Some("utf-8".into()),
            ..ReadOptions::default()
        };
        let p = Table::from_bytes("t.csv".into(), bytes, &utf8)
            .err()
            .unwrap();
        assert_eq!(p.line, 2, "{p}");
    }
}
