//! Streamed table answers (vendored patch 9).
//!
//! A Thrift `list` carries its element count before its elements, so a
//! `generate` answer cannot be written to the socket before the table knows
//! how many rows it has. Upstream builds the whole answer as
//! `Vec<BTreeMap<String, String>>` (every key and value a separate heap
//! allocation, about 3x the size on the wire), then encodes it into the
//! transport. A [`RowWriter`] instead receives the rows one at a time,
//! encodes each at once in the binary protocol's compact form, and counts
//! them: so the answer is held once, as the bytes that go on the wire. Past
//! [`RowWriter::memory_limit`] bytes the encoded rows spill to an unlinked
//! file in a private directory, so memory stays flat in the answer's size.
//! The server then writes the list header with the count and copies the rows
//! through the output protocol.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thrift::protocol::{TMapIdentifier, TOutputProtocol, TType};

/// Encoded bytes a [`RowWriter`] keeps in memory before it spills to a file
/// (when it has a spool directory).
pub const DEFAULT_SPOOL_MEMORY_BYTES: usize = 1024 * 1024;

/// Thrift binary type id of `string` (`TType::String`).
const T_STRING: u8 = 11;

/// Rows of one table answer, encoded as they arrive.
pub struct RowWriter {
    mem: Vec<u8>,
    spill: Option<BufWriter<File>>,
    spool_dir: Option<PathBuf>,
    memory_limit: usize,
    rows: usize,
    bytes: u64,
}

impl RowWriter {
    /// A writer that keeps up to `memory_limit` encoded bytes in memory and
    /// spills the rest to an unlinked file in `spool_dir`. Without a spool
    /// directory everything stays in memory (still encoded once, compactly).
    pub fn new(spool_dir: Option<PathBuf>, memory_limit: usize) -> Self {
        RowWriter {
            mem: Vec::new(),
            spill: None,
            spool_dir,
            memory_limit,
            rows: 0,
            bytes: 0,
        }
    }

    /// Append one row: its `(column, value)` pairs. Pairs are written in the
    /// order given; osquery looks columns up by name.
    pub fn row<'a, I>(&mut self, entries: I) -> io::Result<()>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: ExactSizeIterator,
    {
        let entries = entries.into_iter();
        let n = i32::try_from(entries.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many columns"))?;
        let mut size = 6usize;
        let start = self.mem.len();
        self.mem.extend_from_slice(&[T_STRING, T_STRING]);
        self.mem.extend_from_slice(&n.to_be_bytes());
        for (k, v) in entries {
            for s in [k, v] {
                let len = i32::try_from(s.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "value too long"))?;
                self.mem.extend_from_slice(&len.to_be_bytes());
                self.mem.extend_from_slice(s.as_bytes());
                size += 4 + s.len();
            }
        }
        debug_assert_eq!(self.mem.len() - start, size);
        self.rows += 1;
        self.bytes += size as u64;
        if self.mem.len() > self.memory_limit {
            self.spill_mem()?;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was written.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Encoded size of the rows so far (what they take on the wire).
    pub fn encoded_bytes(&self) -> u64 {
        self.bytes
    }

    /// In-memory limit before spilling.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// True once rows went to a spool file.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Drop every row written so far (e.g. the table failed midway).
    pub fn clear(&mut self) {
        self.mem = Vec::new();
        self.spill = None;
        self.rows = 0;
        self.bytes = 0;
    }

    fn spill_mem(&mut self) -> io::Result<()> {
        if self.spill.is_none() {
            let Some(dir) = self.spool_dir.as_deref() else {
                return Ok(());
            };
            self.spill = Some(BufWriter::with_capacity(64 * 1024, spool_file(dir)?));
        }
        if let Some(f) = self.spill.as_mut() {
            f.write_all(&self.mem)?;
            self.mem.clear();
            if self.mem.capacity() > 2 * self.memory_limit {
                self.mem.shrink_to(self.memory_limit);
            }
        }
        Ok(())
    }

    /// The rows as upstream's maps (for a server that does not stream, and
    /// for tests). Rows that cannot be read back end the list early.
    pub fn into_maps(self) -> Vec<std::collections::BTreeMap<String, String>> {
        let mut out = Vec::with_capacity(self.rows);
        let rows = self.rows;
        let _ = self.with_reader(|r| {
            let mut buf = Vec::new();
            for _ in 0..rows {
                let mut head = [0u8; 6];
                r.read_exact(&mut head)?;
                let n = i32::from_be_bytes([head[2], head[3], head[4], head[5]]);
                let mut m = std::collections::BTreeMap::new();
                for _ in 0..n {
                    read_string(r, &mut buf)?;
                    let k = as_str(&buf)?.to_string();
                    read_string(r, &mut buf)?;
                    m.insert(k, as_str(&buf)?.to_string());
                }
                out.push(m);
            }
            Ok(())
        });
        out
    }

    /// Run `f` over every encoded byte written so far, in order.
    fn with_reader<T>(
        mut self,
        f: impl FnOnce(&mut dyn Read) -> thrift::Result<T>,
    ) -> thrift::Result<T> {
        let mem = std::mem::take(&mut self.mem);
        match self.spill.take() {
            None => f(&mut &mem[..]),
            Some(w) => {
                let mut file = w.into_inner().map_err(|e| e.into_error())?;
                file.write_all(&mem)?;
                drop(mem);
                file.seek(SeekFrom::Start(0))?;
                f(&mut BufReader::with_capacity(64 * 1024, file))
            }
        }
    }

    /// Write the rows (each a `map<string,string>`) through `o_prot`; the
    /// caller has written the list header with [`RowWriter::len`].
    pub(crate) fn copy_to(self, o_prot: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        let rows = self.rows;
        self.with_reader(|r| copy_rows(r, rows, o_prot))
    }
}

/// Re-emit `rows` encoded maps from `r` through the output protocol.
fn copy_rows(
    r: &mut dyn Read,
    rows: usize,
    o_prot: &mut dyn TOutputProtocol,
) -> thrift::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut key = String::new();
    for _ in 0..rows {
        let mut head = [0u8; 6];
        r.read_exact(&mut head)?;
        let n = i32::from_be_bytes([head[2], head[3], head[4], head[5]]);
        o_prot.write_map_begin(&TMapIdentifier::new(TType::String, TType::String, n))?;
        for _ in 0..n {
            read_string(r, &mut buf)?;
            key.clear();
            key.push_str(as_str(&buf)?);
            read_string(r, &mut buf)?;
            o_prot.write_string(&key)?;
            o_prot.write_string(as_str(&buf)?)?;
        }
        o_prot.write_map_end()?;
    }
    Ok(())
}

fn read_string(r: &mut dyn Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_be_bytes(len))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative length in spool"))?;
    buf.resize(len, 0);
    r.read_exact(buf)
}

fn as_str(b: &[u8]) -> io::Result<&str> {
    // The spool only ever holds what `row` wrote from `&str`s.
    std::str::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An anonymous file in `dir`: created exclusively under a fresh name (never
/// following an existing file or link) and unlinked at once, so nothing is
/// left behind, whatever happens to the process.
fn spool_file(dir: &Path) -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            ".answer-spool-{}-{nanos:x}-{n}",
            std::process::id()
        ));
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "could not create a spool file",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::_osquery::ExtensionResponse;
    use thrift::protocol::{
        TBinaryInputProtocol, TBinaryOutputProtocol, TListIdentifier, TSerializable,
    };

    fn encode(w: RowWriter) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut o = TBinaryOutputProtocol::new(&mut out, true);
            o.write_list_begin(&TListIdentifier::new(TType::Map, w.len() as i32))
                .unwrap();
            w.copy_to(&mut o).unwrap();
            o.write_list_end().unwrap();
        }
        out
    }

    fn expected(rows: &[Vec<(String, String)>]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut o = TBinaryOutputProtocol::new(&mut out, true);
            o.write_list_begin(&TListIdentifier::new(TType::Map, rows.len() as i32))
                .unwrap();
            for r in rows {
                o.write_map_begin(&TMapIdentifier::new(
                    TType::String,
                    TType::String,
                    r.len() as i32,
                ))
                .unwrap();
                for (k, v) in r {
                    o.write_string(k).unwrap();
                    o.write_string(v).unwrap();
                }
                o.write_map_end().unwrap();
            }
            o.write_list_end().unwrap();
        }
        out
    }

    fn sample(n: usize) -> Vec<Vec<(String, String)>> {
        (0..n)
            .map(|i| {
                vec![
                    (
                        "path".to_string(),
                        format!("/Users/u{i}/Library/Keychains/login.keychain-db"),
                    ),
                    ("time".to_string(), (1_700_000_000 + i).to_string()),
                    ("empty".to_string(), String::new()),
                    ("ünïcode".to_string(), "\u{202e}bidi\u{0}nul".to_string()),
                ]
            })
            .collect()
    }

    #[test]
    fn same_bytes_as_the_generated_encoder_in_memory_and_spilled() {
        let rows = sample(500);
        let dir = tempfile::tempdir().unwrap();
        for (spool, limit) in [(None, usize::MAX), (Some(dir.path().to_path_buf()), 1000)] {
            let spilling = spool.is_some();
            let mut w = RowWriter::new(spool, limit);
            for r in &rows {
                w.row(r.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .unwrap();
            }
            assert_eq!(w.len(), 500);
            assert_eq!(w.spilled(), spilling);
            assert!(w.mem.len() <= 1000 || !spilling);
            assert_eq!(encode(w), expected(&rows));
        }
        // The spool file was unlinked at creation: nothing left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn decodes_as_an_extension_response() {
        let rows = sample(3);
        let mut w = RowWriter::new(None, DEFAULT_SPOOL_MEMORY_BYTES);
        for r in &rows {
            w.row(r.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap();
        }
        let mut out = Vec::new();
        {
            let mut o = TBinaryOutputProtocol::new(&mut out, true);
            crate::listener::write_streamed_response(
                &mut o,
                &crate::ExtensionStatus::new(0, "OK".to_string(), None),
                w,
            )
            .unwrap();
        }
        let mut rd: &[u8] = &out;
        let mut i = TBinaryInputProtocol::new(&mut rd, true);
        let back = ExtensionResponse::read_from_in_protocol(&mut i).unwrap();
        assert_eq!(back.status.unwrap().code, Some(0));
        let got = back.response.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2]["time"], "1700000002");
        assert_eq!(got[0]["ünïcode"], "\u{202e}bidi\u{0}nul");
    }

    #[test]
    fn into_maps_reads_back_memory_and_spill() {
        let rows = sample(300);
        let dir = tempfile::tempdir().unwrap();
        let mut w = RowWriter::new(Some(dir.path().to_path_buf()), 500);
        for r in &rows {
            w.row(r.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap();
        }
        assert!(w.spilled());
        let maps = w.into_maps();
        assert_eq!(maps.len(), 300);
        assert_eq!(maps[299]["time"], "1700000299");
        assert_eq!(maps[7]["empty"], "");
    }
}
