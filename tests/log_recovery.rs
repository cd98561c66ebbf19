//! The prediction log recovers by itself: a database on a full disk fails its writes, which are
//! counted and retried while the records wait in the queue, and writing resumes once space is
//! freed, with no lock left behind and no row counted as written that did not commit. On a real
//! SQLite file on a small tmpfs mounted for the test (as root; skipped, saying why, otherwise).

mod common;

use mlserve::store::{LogSettings, PredictionLog, PredictionRecord, Store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mounting a tmpfs needs root: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn record(i: usize) -> PredictionRecord {
    common::log::record(
        &common::log::cancer_model(),
        &format!("r{i}"),
        i,
        1_000 + i as i64,
    )
}

/// Fills the disk with a file until writing fails; returns the file.
fn fill(disk: &Path) -> PathBuf {
    let filler = disk.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    filler
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_writes_until_space_is_freed_then_writing_resumes() {
    let disk = match SmallDisk::mount("4m") {
        Ok(disk) => disk,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let url = format!("sqlite://{}", disk.path.join("p.db").display());
    let log = PredictionLog::start(
        &url,
        LogSettings {
            queue_capacity: 100_000,
            max_batch: 500,
            flush_interval: Duration::from_millis(20),
            ..LogSettings::default()
        },
    )
    .await
    .unwrap();
    // Some rows land, then the disk is full.
    log.record((0..200).map(record));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let filler = fill(&disk.path);
    log.record((200..3_000).map(record));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = log.queue_depth();
    assert!(waiting > 0, "records wait while the disk is full");
    // Space comes back: everything queued is written within seconds, with nothing dropped.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let store = Store::open(&url).await.unwrap();
    loop {
        let count = store.prediction_count().await.unwrap();
        if count == 3_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of 3000 rows written 20 s after space came back; queue {}",
            log.queue_depth()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.dropped(), 0);
    assert_eq!(log.queue_depth(), 0);
    log.shutdown().await;
    store.close().await;
}
