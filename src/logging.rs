//! Log output: human-readable on a terminal, JSON lines otherwise or when asked, and
//! optionally daily-rotated files.

use crate::config::LogFormat;
use std::io::IsTerminal;
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Keeps the log writers flushing; drop it last, so buffered lines are written.
pub struct LogGuard {
    _console: tracing_appender::non_blocking::WorkerGuard,
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Log lines are written by a background thread in batches: formatting stays on the request
/// path, but the write system calls (one per line otherwise, a third of a request's CPU time)
/// do not. Lines are never dropped: a full queue makes callers wait.
fn background_writer<W: std::io::Write + Send + 'static>(
    writer: W,
) -> (tracing_appender::non_blocking::NonBlocking, tracing_appender::non_blocking::WorkerGuard) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mlserve-log")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, writer))
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

/// Installs the global subscriber: console in `format`, plus JSON files rotated daily in `dir`.
pub fn init(level: &str, format: LogFormat, dir: Option<&Path>) -> Result<LogGuard, LoggingError> {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (console_writer, console_guard) = background_writer(std::io::stderr());
    let console = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(console_writer)
            .with_filter(filter(level)?)
            .boxed()
    } else {
        fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(console_writer)
            .with_filter(filter(level)?)
            .boxed()
    };
    let (file_layer, guard) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LoggingError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
            let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::daily(
                dir,
                "mlserve.log",
            ));
            let layer = fmt::layer()
                .json()
                .flatten_event(true)
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter(level)?);
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(file_layer)
        .try_init();
    Ok(LogGuard {
        _console: console_guard,
        _file: guard,
    })
}
