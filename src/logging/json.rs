//! JSON lines, one per event, in the shape of tracing-subscriber's flattened JSON format:
//! `{"timestamp":"2026-11-30T04:21:21.506151Z","level":"INFO",<fields in order>,"target":"…"}`.
//!
//! Written here rather than with tracing-subscriber's `.json()` because the access log writes
//! one line per request: that formatter goes through serde's map machinery and checks every
//! small piece it writes for UTF-8, which made the access log line cost ~2 µs of a ~24 µs
//! single-row prediction request. This writes each line into one reused buffer, reformats the
//! date once a second, and escapes strings as serde_json does. Events of crates that log through
//! the `log` crate keep their own target and level, as there. Spans are not written: the server
//! opens none (ONNX Runtime's `ort` opens trace-level ones, which only their own events show).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `--log-format json` and of log files.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// A thread's line buffer and its cached date.
struct Scratch {
    line: Vec<u8>,
    date: Date,
}

/// The date prefix (`YYYY-MM-DDTHH:MM:SS`) of one second since the epoch.
struct Date {
    second: u64,
    prefix: String,
}

impl Date {
    fn none() -> Date {
        Date {
            second: u64::MAX,
            prefix: String::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        line: Vec::with_capacity(512),
        date: Date::none(),
    });
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        SCRATCH.with(|cell| {
            let Ok(mut scratch) = cell.try_borrow_mut() else {
                // An event logged while formatting one (a field's Debug that logs): format it
                // into a buffer of its own.
                let mut line = Vec::new();
                write_line(&mut line, &mut Date::none(), event);
                return writer.write_str(&String::from_utf8_lossy(&line));
            };
            let Scratch { line, date } = &mut *scratch;
            line.clear();
            write_line(line, date, event);
            // Every byte written is UTF-8 (ASCII punctuation, serde_json's output, the date).
            writer.write_str(std::str::from_utf8(line).map_err(|_| std::fmt::Error)?)
        })
    }
}

/// Writes the event as one JSON line ending in a newline.
fn write_line(line: &mut Vec<u8>, date: &mut Date, event: &Event<'_>) {
    // An event forwarded from the `log` crate has "log" as its target until normalized.
    let normalized = event.normalized_metadata();
    let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
    line.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(line, date, SystemTime::now());
    line.extend_from_slice(b"\",\"level\":\"");
    line.extend_from_slice(metadata.level().as_str().as_bytes());
    line.push(b'"');
    event.record(&mut Fields { line });
    line.extend_from_slice(b",\"target\":");
    push_string(line, metadata.target());
    line.extend_from_slice(b"}\n");
}

/// RFC 3339 in UTC with microseconds, as tracing-subscriber writes it.
fn write_timestamp(line: &mut Vec<u8>, date: &mut Date, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    if date.second != second {
        date.prefix.clear();
        let at = i64::try_from(second)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let _ = write!(date.prefix, "{}", at.strftime("%Y-%m-%dT%H:%M:%S"));
        date.second = second;
    }
    line.extend_from_slice(date.prefix.as_bytes());
    let micros = since_epoch.subsec_micros();
    let digits = [
        b'.',
        b'0' + (micros / 100_000) as u8,
        b'0' + (micros / 10_000 % 10) as u8,
        b'0' + (micros / 1_000 % 10) as u8,
        b'0' + (micros / 100 % 10) as u8,
        b'0' + (micros / 10 % 10) as u8,
        b'0' + (micros % 10) as u8,
        b'Z',
    ];
    line.extend_from_slice(&digits);
}

/// A JSON string, escaped.
fn push_string(line: &mut Vec<u8>, text: &str) {
    line.push(b'"');
    escape_into(line, text);
    line.push(b'"');
}

/// What JSON writes instead of each byte inside a string (RFC 8259 §7), as serde_json writes
/// it: 0 the byte itself, `u` a `\u00XX` escape, otherwise the letter after the backslash of a
/// short escape. A table rather than a `match`: under callgrind the match cost about 3,200
/// instructions an access log line, the table 2,200.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

/// Appends `text` as the inside of a JSON string, escaped by [`ESCAPES`]; everything else,
/// UTF-8 included, as it is, copied in runs.
fn escape_into(line: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut clean_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPES[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        line.extend_from_slice(&bytes[clean_from..at]);
        clean_from = at + 1;
        if escape == b'u' {
            let (high, low) = (usize::from(byte >> 4), usize::from(byte & 0xf));
            line.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[high], HEX[low]]);
        } else {
            line.extend_from_slice(&[b'\\', escape]);
        }
    }
    line.extend_from_slice(&bytes[clean_from..]);
}

/// Writes each field as `,"name":value`: numbers and booleans as JSON numbers and booleans
/// (a non-finite float as `null`), anything else as its text (128-bit integers too, as
/// tracing-subscriber writes them). A forwarded `log` record's `log.*` fields are written too,
/// as there.
struct Fields<'a> {
    line: &'a mut Vec<u8>,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(b',');
        push_string(self.line, field.name());
        self.line.push(b':');
    }

    fn value(&mut self, field: &Field, value: impl serde::Serialize) {
        self.key(field);
        let _ = serde_json::to_writer(&mut *self.line, &value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_string(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        // Escaped as it is formatted: no string to allocate for every message.
        self.line.push(b'"');
        let _ = write!(EscapedText(self.line), "{value:?}");
        self.line.push(b'"');
    }
}

/// Formatted text written into a JSON string's inside, escaped ([`escape_into`]).
struct EscapedText<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for EscapedText<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `log` writes with this format.
    fn lines_of(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn strings_are_escaped_byte_for_byte_as_serde_json_escapes_them() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for text in ["", "plain", "é 名 🙂 \u{2028}", every_ascii.as_str()] {
            let mut ours = Vec::new();
            push_string(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn formatted_text_is_escaped_as_json_requires() {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é 名 🙂";
        let lines = lines_of(|| {
            tracing::warn!(detail = ?tricky, "said {tricky}");
        });
        assert_eq!(lines[0]["message"], format!("said {tricky}"));
        // A Debug field keeps Debug's own quotes and escapes, then is escaped for JSON.
        assert_eq!(lines[0]["detail"], format!("{tricky:?}"));
    }

    #[test]
    fn an_event_is_one_json_object_with_its_fields_in_order() {
        let lines = lines_of(|| {
            tracing::info!(
                target: "mlserve::access",
                request_id = "a\"b\n",
                status = 200u16,
                latency_ms = 0.25,
                negative = -3i64,
                ok = true,
                nan = f64::NAN,
                error = %std::io::Error::other("disk full"),
                "request"
            );
            tracing::warn!(count = 2, "second {}", "line");
        });
        assert_eq!(lines.len(), 2);
        let keys: Vec<&str> = lines[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "request_id",
                "status",
                "latency_ms",
                "negative",
                "ok",
                "nan",
                "error",
                "target"
            ]
        );
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "request");
        assert_eq!(first["request_id"], "a\"b\n");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 0.25);
        assert_eq!(first["negative"], -3);
        assert_eq!(first["ok"], true);
        assert_eq!(first["nan"], serde_json::Value::Null);
        assert_eq!(first["error"], "disk full");
        assert_eq!(first["target"], "mlserve::access");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "second line");
        assert_eq!(lines[1]["count"], 2);
    }

    #[test]
    fn log_crate_records_keep_their_target_and_wide_integers_are_text() {
        let lines = lines_of(|| {
            // What tracing-log's LogTracer turns a `log` record into.
            let record = tracing_log::log::Record::builder()
                .args(format_args!("watch failed"))
                .level(tracing_log::log::Level::Warn)
                .target("notify::inotify")
                .build();
            tracing_log::format_trace(&record).unwrap();
            tracing::info!(
                big = 170_141_183_460_469_231_731_687_303_715_884_105_727_i128,
                "wide"
            );
        });
        assert_eq!(lines[0]["target"], "notify::inotify");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["message"], "watch failed");
        assert_eq!(lines[1]["big"], "170141183460469231731687303715884105727");
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_with_microseconds() {
        let mut line = Vec::new();
        let mut date = Date::none();
        let at = UNIX_EPOCH + Duration::from_micros(1_796_012_481_000_042);
        write_timestamp(&mut line, &mut date, at);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2026-11-30T04:21:21.000042Z"
        );
        // The same second reuses the date; the next one makes a new one.
        let mut line = Vec::new();
        write_timestamp(&mut line, &mut date, at + Duration::from_micros(999_000));
        write_timestamp(&mut line, &mut date, at + Duration::from_secs(1));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2026-11-30T04:21:21.999042Z2026-11-30T04:21:22.000042Z"
        );
    }
}
