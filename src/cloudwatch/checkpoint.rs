//! `--checkpoint FILE`: per-stream progress of `--follow` (and of repeated
//! batch runs), so a restart resumes with nothing lost and nothing repeated.
//!
//! Per stream it keeps the *watermark* (the latest event timestamp
//! received) and the ids of the events emitted whose timestamp lies in the
//! overlap window below it. Each poll re-reads from `watermark − overlap`
//! (late-ingested events with older timestamps are caught there) and skips
//! the ids already emitted. With `--output FILE` it also keeps the length of
//! the output file once the batch was written and synced.
//!
//! Order of a poll: events are written and flushed (and the output file
//! synced), *then* the checkpoint covering them is written: to a temporary
//! file, fsynced, renamed over the old one, and the directory fsynced. A
//! `kill -9` at any point leaves either the old or the new checkpoint.
//! On restart the output file is cut back to the length the checkpoint
//! recorded (dropping a batch written after it), so the re-read batch is
//! written once: no event lost, none duplicated. Without `--output`
//! (stdout) the last batch before a kill may be written again; its events
//! carry their CloudWatch event ids, so a consumer can drop the repeats.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Progress of one stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamState {
    /// Latest event timestamp received (epoch ms).
    pub watermark_ms: Option<i64>,
    /// Event ids already emitted, with their timestamps, within the overlap
    /// window below the watermark.
    pub seen: BTreeMap<String, i64>,
}

/// The whole checkpoint file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    pub version: u32,
    /// Length of `--output` after the last committed batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len: Option<u64>,
    /// By `<group>\t<stream>`.
    pub streams: BTreeMap<String, StreamState>,
}

/// The key of a stream.
pub fn key(group: &str, stream: &str) -> String {
    format!("{group}\t{stream}")
}

impl Checkpoint {
    /// Reads a checkpoint; a missing file is an empty checkpoint.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a pgtrail checkpoint: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint {
                version: 1,
                ..Checkpoint::default()
            }),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut tmp = PathBuf::from(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        tmp.set_file_name(format!(".{name}.tmp"));
        {
            let mut file = fs::File::create(&tmp)?;
            serde_json::to_writer(&mut file, self).map_err(io::Error::other)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(d) = fs::File::open(dir.unwrap_or(Path::new("."))) {
            // Not every platform can sync a directory; the rename stands.
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub fn stream(&self, key: &str) -> Option<&StreamState> {
        self.streams.get(key)
    }

    pub fn stream_mut(&mut self, key: &str) -> &mut StreamState {
        self.streams.entry(key.to_owned()).or_default()
    }
}

impl StreamState {
    /// Where the next poll starts: the overlap window below the watermark.
    pub fn resume_from(&self, overlap_ms: i64) -> Option<i64> {
        self.watermark_ms.map(|w| w.saturating_sub(overlap_ms))
    }

    /// Records emitted events and forgets ids below the overlap window.
    /// The watermark never passes `now` (the poll's start): an event stamped
    /// in the future must not make the next poll skip the present.
    pub fn record(
        &mut self,
        emitted: impl IntoIterator<Item = (String, i64)>,
        overlap_ms: i64,
        now: i64,
    ) {
        for (id, ts) in emitted {
            let capped = ts.min(now);
            self.watermark_ms = Some(self.watermark_ms.map_or(capped, |w| w.max(capped)));
            self.seen.insert(id, ts);
        }
        if let Some(floor) = self.resume_from(overlap_ms) {
            self.seen.retain(|_, ts| *ts >= floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_prunes_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("pgtrail-ckpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.json");
        let mut cp = Checkpoint::load(&path).unwrap();
        let s = cp.stream_mut(&key("/g", "s"));
        s.record([("a".into(), 1_000), ("b".into(), 50_000)], 10_000, 60_000);
        assert_eq!(s.watermark_ms, Some(50_000));
        assert_eq!(s.seen.len(), 1, "a is below the window");
        assert_eq!(s.resume_from(10_000), Some(40_000));
        cp.output_len = Some(42);
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), cp);
        fs::write(&path, b"junk").unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().contains("cp.json"));
        let _ = fs::remove_dir_all(&dir);
    }
}
