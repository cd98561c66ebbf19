//! The prediction log recovers by itself: a database on a full disk fails its writes, which are
//! counted and retried while the records wait in the queue, and writing resumes once space is
//! freed, with no lock left behind and no row counted as written that did not commit (a real
//! SQLite file on a small tmpfs mounted for the test); a SQLite file deleted while in use is
//! created again and the log goes on in it; a PostgreSQL server that stops (one of the test's
//! own) holds the records back until it is up again. Mounting and running PostgreSQL need root;
//! without it those tests are skipped, saying why.

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

/// Waits until `store` holds `rows` predictions, at most `limit`.
async fn wait_for_rows(store: &Store, rows: u64, limit: Duration, log: &PredictionLog) {
    let deadline = Instant::now() + limit;
    loop {
        let count = store.prediction_count().await.unwrap_or(0);
        if count == rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {rows} rows written after {limit:?}; queue {}",
            log.queue_depth()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quick() -> LogSettings {
    LogSettings {
        max_batch: 500,
        flush_interval: Duration::from_millis(20),
        ..LogSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_file_deleted_while_in_use_is_created_again_and_logging_goes_on_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    let log = PredictionLog::start(&url, quick()).await.unwrap();
    log.record((0..100).map(record));
    wait_for_rows(log.store(), 100, Duration::from_secs(10), &log).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    log.record((100..300).map(record));
    // The rows after the deletion are in a new file anyone can open, with its tables.
    let store = Store::open(&url).await.unwrap();
    wait_for_rows(&store, 200, Duration::from_secs(10), &log).await;
    assert!(store.find_prediction("r150", 0).await.unwrap().is_some());
    assert_eq!((log.dropped(), log.queue_depth()), (0, 0));
    log.shutdown().await;
    store.close().await;
}

/// A PostgreSQL server of the test's own (so stopping it disturbs no other test), in a fresh
/// data folder on a free port; stopped and removed when dropped.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn start() -> Result<OwnPostgres, String> {
        if !Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n")
        {
            return Err("running PostgreSQL as the postgres user needs root".into());
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL installed: {e}"))?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .max()
            .ok_or("no PostgreSQL installed")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = OwnPostgres {
            bin,
            data,
            port,
            _dir: dir,
        };
        server.as_postgres("initdb", &["-A", "trust", "-U", "postgres"])?;
        server.pg_ctl("start")?;
        Ok(server)
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        // No pipes: the server pg_ctl starts would inherit them and keep a reader waiting.
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.data.with_file_name("server.log"));
            Err(format!(
                "{tool} failed ({status}): {}",
                log.unwrap_or_default()
            ))
        }
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        self.as_postgres("pg_ctl", &["-w", "-m", "fast", "-o", &options, action])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_server_that_restarts_loses_nothing_and_writing_resumes_by_itself() {
    let server = match OwnPostgres::start() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let log = PredictionLog::start(&server.url(), quick()).await.unwrap();
    log.record((0..100).map(record));
    wait_for_rows(log.store(), 100, Duration::from_secs(10), &log).await;
    server.pg_ctl("stop").unwrap();
    log.record((100..1_000).map(record));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        log.queue_depth() > 0,
        "records wait while the server is down"
    );
    server.pg_ctl("start").unwrap();
    wait_for_rows(log.store(), 1_000, Duration::from_secs(30), &log).await;
    assert_eq!((log.dropped(), log.queue_depth()), (0, 0));
    log.shutdown().await;
}
