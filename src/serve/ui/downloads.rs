//! Batch results kept in memory for a while, so the result page can offer a download link.
//!
//! Bounded by count, by total size and by age: the oldest results go first. Ids are random
//! UUIDs, so one person cannot guess another's link. Results live in this process only; behind
//! a load balancer, the download is served by the replica that made it (sticky sessions), and
//! the page says how long it is kept.

use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    id: String,
    created: Instant,
    file_name: String,
    bytes: Bytes,
}

/// A finished CSV, ready to download.
pub struct Download {
    /// The name to save it under.
    pub file_name: String,
    /// The CSV.
    pub bytes: Bytes,
}

/// The kept results.
pub struct Downloads {
    entries: Mutex<VecDeque<Entry>>,
    max_entries: usize,
    max_bytes: usize,
    keep: Duration,
}

impl Default for Downloads {
    fn default() -> Self {
        Downloads::new(64, 256 * 1024 * 1024, Duration::from_secs(30 * 60))
    }
}

impl Downloads {
    /// At most `max_entries` results of `max_bytes` in all, each kept for `keep`.
    pub fn new(max_entries: usize, max_bytes: usize, keep: Duration) -> Self {
        Downloads {
            entries: Mutex::new(VecDeque::new()),
            max_entries,
            max_bytes,
            keep,
        }
    }

    /// The largest result kept.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// How long a result is kept.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// Keeps a result and returns its id; evicts the oldest to stay within bounds. A result
    /// larger than the whole budget is not kept (`None`).
    pub fn put(&self, file_name: String, bytes: Bytes) -> Option<String> {
        if bytes.len() > self.max_bytes {
            return None;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Self::expire(&mut entries, self.keep);
        let mut total: usize = entries.iter().map(|e| e.bytes.len()).sum();
        while !entries.is_empty()
            && (entries.len() >= self.max_entries || total + bytes.len() > self.max_bytes)
        {
            if let Some(old) = entries.pop_front() {
                total -= old.bytes.len();
            }
        }
        entries.push_back(Entry {
            id: id.clone(),
            created: Instant::now(),
            file_name,
            bytes,
        });
        Some(id)
    }

    /// The result with this id, while it is kept.
    pub fn get(&self, id: &str) -> Option<Download> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Self::expire(&mut entries, self.keep);
        entries.iter().find(|e| e.id == id).map(|e| Download {
            file_name: e.file_name.clone(),
            bytes: e.bytes.clone(),
        })
    }

    fn expire(entries: &mut VecDeque<Entry>, keep: Duration) {
        while entries.front().is_some_and(|e| e.created.elapsed() > keep) {
            entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_results_make_room_and_oversized_ones_are_not_kept() {
        let downloads = Downloads::new(2, 10, Duration::from_secs(60));
        let a = downloads
            .put("a.csv".into(), Bytes::from_static(b"aaaa"))
            .unwrap();
        let b = downloads
            .put("b.csv".into(), Bytes::from_static(b"bbbb"))
            .unwrap();
        assert_eq!(downloads.get(&a).unwrap().file_name, "a.csv");
        let c = downloads
            .put("c.csv".into(), Bytes::from_static(b"cccc"))
            .unwrap();
        assert!(downloads.get(&a).is_none(), "count bound evicts the oldest");
        assert_eq!(&downloads.get(&b).unwrap().bytes[..], b"bbbb");
        let d = downloads
            .put("d.csv".into(), Bytes::from_static(b"dddddddd"))
            .unwrap();
        assert!(downloads.get(&b).is_none() && downloads.get(&c).is_none());
        assert!(
            downloads.get(&d).is_some(),
            "size bound evicts until it fits"
        );
        assert!(
            downloads
                .put("e".into(), Bytes::from(vec![0; 11]))
                .is_none()
        );
        assert!(downloads.get("nope").is_none());
    }

    #[test]
    fn results_expire() {
        let downloads = Downloads::new(4, 100, Duration::ZERO);
        let id = downloads
            .put("a.csv".into(), Bytes::from_static(b"a"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(downloads.get(&id).is_none());
    }
}
