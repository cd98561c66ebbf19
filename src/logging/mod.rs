//! Log output: human-readable on a terminal, JSON lines otherwise or when asked, and
//! optionally daily-rotated files.

mod json;

use crate::config::LogFormat;
use json::JsonLines;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// How often buffered log lines are written out.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// A buffer this full is written out at once, by the thread that filled it.
const MAX_BUFFERED: usize = 1 << 20;

/// Keeps the log writers flushing; drop it last, so buffered lines are written.
pub struct LogGuard {
    _console: BatchedWriterGuard,
    _file: Option<BatchedWriterGuard>,
}

struct BatchShared {
    buffer: Mutex<Vec<u8>>,
    closed: AtomicBool,
}

/// A log writer that appends each line to a shared buffer, which a background thread writes
/// out every few milliseconds. A line costs a lock and a copy on the request path. (A channel
/// that wakes a writer thread for every line, as tracing-appender's non-blocking writer does,
/// cost a quarter of a prediction request's CPU time in futex calls.) Lines are never
/// dropped: a full buffer is written out by the caller.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<BatchShared>,
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

/// Stops the flushing thread and writes what is left.
pub struct BatchedWriterGuard {
    writer: BatchedWriter,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BatchedWriter {
    /// A writer into `sink` and the guard that flushes it at the end.
    pub fn start(sink: impl Write + Send + 'static) -> (BatchedWriter, BatchedWriterGuard) {
        let writer = BatchedWriter {
            shared: Arc::new(BatchShared {
                buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
                closed: AtomicBool::new(false),
            }),
            sink: Arc::new(Mutex::new(Box::new(sink))),
        };
        let flusher = writer.clone();
        let thread = std::thread::Builder::new()
            .name("mlserve-log".into())
            .spawn(move || {
                while !flusher.shared.closed.load(Ordering::Acquire) {
                    std::thread::park_timeout(FLUSH_INTERVAL);
                    flusher.flush_buffer();
                }
            })
            .ok();
        let guard = BatchedWriterGuard {
            writer: writer.clone(),
            thread,
        };
        (writer, guard)
    }

    fn flush_buffer(&self) {
        let pending = {
            let mut buffer = self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(64 * 1024))
        };
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        // A log sink that fails (a closed stderr) must not take the server down.
        let _ = sink.write_all(&pending).and_then(|()| sink.flush());
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut buffer = self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
            buffer.extend_from_slice(bytes);
            buffer.len() >= MAX_BUFFERED
        };
        if full {
            self.flush_buffer();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;
    fn make_writer(&'a self) -> BatchedWriter {
        self.clone()
    }
}

impl Drop for BatchedWriterGuard {
    fn drop(&mut self) {
        self.writer.shared.closed.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.writer.flush_buffer();
    }
}

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log folder cannot be created.
    #[error("cannot create log folder {path}: {source}")]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The filter does not parse.
    #[error("invalid log filter '{0}'")]
    Filter(String),
}

fn filter(level: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::builder()
        .parse(level)
        .map_err(|_| LoggingError::Filter(level.to_string()))
}

/// A layer writing JSON lines to `writer`, for events at `level` and above.
fn json_layer<S, W>(writer: W, level: &str) -> Result<Box<dyn Layer<S> + Send + Sync>, LoggingError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    Ok(fmt::layer()
        .event_format(JsonLines)
        .with_writer(writer)
        .with_filter(filter(level)?)
        .boxed())
}

/// The console and the file, written the same lines.
#[derive(Clone)]
struct Both(BatchedWriter, BatchedWriter);

impl Write for Both {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(bytes)?;
        self.1.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> fmt::MakeWriter<'a> for Both {
    type Writer = Both;
    fn make_writer(&'a self) -> Both {
        self.clone()
    }
}

/// Installs the global subscriber: console in `format`, plus JSON files rotated daily in `dir`.
pub fn init(level: &str, format: LogFormat, dir: Option<&Path>) -> Result<LogGuard, LoggingError> {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (console_writer, console_guard) = BatchedWriter::start(std::io::stderr());
    let file = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LoggingError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
            Some(BatchedWriter::start(tracing_appender::rolling::daily(
                dir,
                "mlserve.log",
            )))
        }
        None => None,
    };
    let (file_writer, file_guard) = file.unzip();
    let (console, file_layer) = match (json, file_writer) {
        // Both JSON lines: each line is formatted once and written to both.
        (true, Some(file_writer)) => (json_layer(Both(console_writer, file_writer), level)?, None),
        (true, None) => (json_layer(console_writer, level)?, None),
        (false, file_writer) => (
            fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(console_writer)
                .with_filter(filter(level)?)
                .boxed(),
            file_writer
                .map(|writer| json_layer(writer, level))
                .transpose()?,
        ),
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(file_layer)
        .try_init();
    Ok(LogGuard {
        _console: console_guard,
        _file: file_guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batched_lines_are_all_written_in_order_by_the_end() {
        let sink = Shared::default();
        let (mut writer, guard) = BatchedWriter::start(sink.clone());
        for i in 0..1000 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], "line 999");
    }

    #[test]
    fn lines_appear_without_the_guard_being_dropped() {
        let sink = Shared::default();
        let (mut writer, _guard) = BatchedWriter::start(sink.clone());
        writer.write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "not flushed within 5 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
