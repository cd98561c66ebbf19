//! Progress of long command-line work, on stderr: the one way the command line makes a progress
//! bar. [`Progress`] counts rows (or any unit) with a bar and time left when the total is known,
//! a spinner with the count and rate when it is not, and a summary line at the end.
//! [`PhaseProgress`] shows training's phases through it.
//!
//! Nothing is drawn when stderr is not a terminal (a pipe, a file, a CI log) or with
//! `--quiet` ([`Progress::hidden`]), and nothing is ever written to stdout, which may carry a
//! command's output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a drawn display is refreshed even when nothing moves (spinner, rate, time).
const TICK: Duration = Duration::from_millis(120);

/// What the bar's position counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// The counted units, out of a known total: a bar with time left.
    Count,
    /// Bytes of an input of known size, while the units are counted apart: a bar with the
    /// share done and time left, for a file whose number of rows is not known in advance.
    Bytes,
    /// The counted units, with no total: a spinner.
    Unbounded,
}

/// A progress display on stderr: rows done, rows per second, and time left when the total is
/// known. Hidden when stderr is not a terminal, or when made with [`Progress::hidden`].
///
/// ```ignore
/// let progress = Progress::new(None, "rows");
/// for batch in batches { write(batch)?; progress.inc(batch.len() as u64); }
/// progress.finish(); // "12,000 rows in 1.5 s (8.0k rows/s)", when drawn
/// ```
pub(crate) struct Progress {
    bar: ProgressBar,
    drawn: bool,
    measure: Measure,
    count: Arc<AtomicU64>,
    what: Arc<str>,
    started: Instant,
}

impl Progress {
    /// A display counting `what` (a plural noun: "rows"): a bar with time left when `total`
    /// is known, else a spinner with the count and rate. Drawn only when stderr is a terminal.
    pub(crate) fn new(total: Option<u64>, what: &str) -> Self {
        let measure = match total {
            Some(_) => Measure::Count,
            None => Measure::Unbounded,
        };
        Self::on(stderr_target(), total, measure, what)
    }

    /// A display counting `what` while reading an input of `total_bytes`: the bar follows
    /// [`Progress::set_bytes`], so the time left comes from the bytes read, and [`Progress::inc`]
    /// counts the units shown and in the rate. For a file whose size is known but not its rows.
    pub(crate) fn over_bytes(total_bytes: u64, what: &str) -> Self {
        Self::on(stderr_target(), Some(total_bytes), Measure::Bytes, what)
    }

    /// A display that never draws (`--quiet`); counting still works.
    pub(crate) fn hidden() -> Self {
        Self::on(None, None, Measure::Unbounded, "")
    }

    /// Puts `label` (a phase: "fitting") before the bar.
    pub(crate) fn with_label(self, label: &str) -> Self {
        self.bar.set_prefix(format!("{label:>16} "));
        self
    }

    /// A display on `target`, or hidden when there is none.
    fn on(
        target: Option<ProgressDrawTarget>,
        total: Option<u64>,
        measure: Measure,
        what: &str,
    ) -> Self {
        let drawn = target.is_some();
        let count = Arc::new(AtomicU64::new(0));
        let what: Arc<str> = Arc::from(what);
        let bar =
            ProgressBar::with_draw_target(total, target.unwrap_or_else(ProgressDrawTarget::hidden))
                // An error or a panic ends the run without a bar left on the screen.
                .with_finish(ProgressFinish::AndClear);
        if drawn {
            bar.set_style(style(measure, &count, &what));
            bar.enable_steady_tick(TICK);
        }
        Progress {
            bar,
            drawn,
            measure,
            count,
            what,
            started: Instant::now(),
        }
    }

    /// `n` more units are done.
    pub(crate) fn inc(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
        if self.drawn && self.measure != Measure::Bytes {
            self.bar.inc(n);
        }
    }

    /// How many bytes of the input are read so far, for a display made with
    /// [`Progress::over_bytes`]; ignored by the others.
    pub(crate) fn set_bytes(&self, bytes: u64) {
        if self.drawn && self.measure == Measure::Bytes {
            self.bar.set_position(bytes);
        }
    }

    /// The units done so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Runs `f` (which prints to stderr, say) with the display out of the way, then draws it
    /// again, so lines written meanwhile are not mixed with it.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.drawn { self.bar.suspend(f) } else { f() }
    }

    /// Ends the display and, when it was drawn, leaves a summary on stderr:
    /// `12,000 rows in 1.5 s (8.0k rows/s)`.
    pub(crate) fn finish(self) {
        if self.drawn {
            self.bar.finish_and_clear();
            eprintln!(
                "{}",
                summary(self.count(), &self.what, self.started.elapsed())
            );
        }
    }

    /// Ends the display without a summary.
    pub(crate) fn clear(self) {
        self.bar.finish_and_clear();
    }
}

/// Stderr when it is a terminal; none otherwise.
fn stderr_target() -> Option<ProgressDrawTarget> {
    std::io::stderr()
        .is_terminal()
        .then(ProgressDrawTarget::stderr)
}

/// The display's look, with the count, rate and time formatted here.
fn style(measure: Measure, count: &Arc<AtomicU64>, what: &Arc<str>) -> ProgressStyle {
    let template = match measure {
        Measure::Count | Measure::Bytes => "{prefix}[{bar:30}] {done} · {rate} · {left}",
        Measure::Unbounded => "{prefix}{spinner} {done} · {rate} · {spent}",
    };
    let (done_count, done_what) = (Arc::clone(count), Arc::clone(what));
    let (rate_count, rate_what) = (Arc::clone(count), Arc::clone(what));
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    style
        .progress_chars("=> ")
        .with_key(
            "done",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let done = done_count.load(Ordering::Relaxed);
                let _ = w.write_str(&done_text(measure, done, state, &done_what));
            },
        )
        .with_key(
            "rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let done = rate_count.load(Ordering::Relaxed);
                let _ = write!(w, "{}", rate_text(done, state.elapsed(), &rate_what));
            },
        )
        .with_key(
            "left",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&left_text(state.pos(), state.eta()));
            },
        )
        .with_key(
            "spent",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&format_duration(state.elapsed()));
            },
        )
}

/// What is done: `30/100 steps`, `43% · 1,234 rows` (by bytes), or `1,234 rows`.
fn done_text(measure: Measure, done: u64, state: &ProgressState, what: &str) -> String {
    match (measure, state.len()) {
        (Measure::Count, Some(total)) => {
            format!("{}/{} {what}", format_count(done), format_count(total))
        }
        (Measure::Bytes, Some(_)) => {
            let percent = (state.fraction() * 100.0).floor();
            format!("{percent:.0}% · {} {what}", format_count(done))
        }
        _ => format!("{} {what}", format_count(done)),
    }
}

/// The mean rate so far: `8.0k rows/s`, or `- rows/s` before any time has passed.
fn rate_text(done: u64, elapsed: Duration, what: &str) -> String {
    match rate(done, elapsed) {
        Some(per_second) => format!("{} {what}/s", format_rate(per_second)),
        None => format!("- {what}/s"),
    }
}

/// Time left: `ETA 1m 05s`, or `ETA -` before there is anything to go by.
fn left_text(position: u64, eta: Duration) -> String {
    if position == 0 {
        "ETA -".to_string()
    } else {
        format!("ETA {}", format_duration(eta))
    }
}

/// Units per second over `elapsed`, when enough time has passed to say.
fn rate(done: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds >= 0.001).then(|| done as f64 / seconds)
}

/// The line left when a drawn display finishes: `12,000 rows in 1.5 s (8.0k rows/s)`.
fn summary(done: u64, what: &str, elapsed: Duration) -> String {
    let mut line = format!(
        "{} {what} in {:.1} s",
        format_count(done),
        elapsed.as_secs_f64()
    );
    if let Some(per_second) = rate(done, elapsed) {
        let _ = write!(line, " ({} {what}/s)", format_rate(per_second));
    }
    line
}

/// A count with thousands separators: `1,234,567`.
fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate in three significant figures or so: `4.2`, `850`, `38.0k`, `1.2M`.
fn format_rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        return "0".to_string();
    }
    if per_second < 10.0 {
        return format!("{per_second:.1}");
    }
    if per_second < 999.5 {
        return format!("{per_second:.0}");
    }
    let mut value = per_second;
    for unit in ["k", "M", "G"] {
        value /= 1000.0;
        // Rounded to one decimal, 999.96 would read 1000.0k: that is the next unit's 1.0M.
        if value < 999.95 || unit == "G" {
            return format!("{value:.1}{unit}");
        }
    }
    format!("{value:.1}G")
}

/// A duration to the second: `7s`, `1m 05s`, `2h 03m`.
fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Training's phases (cross-validating, fitting) as bars of steps, hidden with `--quiet` or
/// when stderr is not a terminal.
pub(crate) struct PhaseProgress {
    quiet: bool,
    current: Mutex<Option<Progress>>,
}

impl PhaseProgress {
    /// Phases drawn unless `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        PhaseProgress {
            quiet,
            current: Mutex::new(None),
        }
    }
}

impl mlserve::train::Progress for PhaseProgress {
    fn start(&self, message: &str, total: u64) {
        if self.quiet {
            return;
        }
        let progress = Progress::new(Some(total), "steps").with_label(message);
        if let Ok(mut slot) = self.current.lock()
            && let Some(previous) = slot.replace(progress)
        {
            previous.clear();
        }
    }

    fn advance(&self, steps: u64) {
        if let Ok(slot) = self.current.lock()
            && let Some(progress) = slot.as_ref()
        {
            progress.inc(steps);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.current.lock()
            && let Some(progress) = slot.take()
        {
            progress.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(12_345), "12,345");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn rates_keep_about_three_figures() {
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(f64::NAN), "0");
        assert_eq!(format_rate(f64::INFINITY), "0");
        assert_eq!(format_rate(4.24), "4.2");
        assert_eq!(format_rate(9.96), "10.0");
        assert_eq!(format_rate(850.4), "850");
        assert_eq!(format_rate(999.4), "999");
        assert_eq!(format_rate(999.6), "1.0k");
        assert_eq!(format_rate(38_040.0), "38.0k");
        assert_eq!(format_rate(255_000.0), "255.0k");
        assert_eq!(format_rate(999_960.0), "1.0M");
        assert_eq!(format_rate(1_234_567.0), "1.2M");
        assert_eq!(format_rate(5.0e12), "5000.0G");
    }

    #[test]
    fn rate_needs_some_time_to_have_passed() {
        assert_eq!(rate(10, Duration::ZERO), None);
        assert_eq!(rate(10, Duration::from_secs(2)), Some(5.0));
        assert_eq!(rate_text(0, Duration::ZERO, "rows"), "- rows/s");
        assert_eq!(
            rate_text(12_000, Duration::from_millis(1500), "rows"),
            "8.0k rows/s"
        );
    }

    #[test]
    fn durations_read_to_the_second() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(7_400)), "7s");
        assert_eq!(format_duration(Duration::from_millis(59_600)), "1m 00s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m 05s");
        assert_eq!(format_duration(Duration::from_secs(3_599)), "59m 59s");
        assert_eq!(format_duration(Duration::from_secs(3_600)), "1h 00m");
        assert_eq!(
            format_duration(Duration::from_secs(2 * 3600 + 3 * 60 + 9)),
            "2h 03m"
        );
    }

    #[test]
    fn time_left_is_unknown_until_something_is_done() {
        assert_eq!(left_text(0, Duration::ZERO), "ETA -");
        assert_eq!(left_text(10, Duration::from_secs(65)), "ETA 1m 05s");
    }

    #[test]
    fn the_summary_gives_count_seconds_and_rate() {
        assert_eq!(
            summary(12_000, "rows", Duration::from_millis(1_500)),
            "12,000 rows in 1.5 s (8.0k rows/s)"
        );
        assert_eq!(summary(0, "rows", Duration::ZERO), "0 rows in 0.0 s");
    }

    /// A terminal in memory: the lines drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn last_line(&self) -> String {
            let lines = self.0.lock().map(|l| l.clone()).unwrap_or_default();
            lines
                .into_iter()
                .rfind(|line| !line.trim().is_empty())
                .unwrap_or_default()
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The last line drawn once it shows `expected` (draws are rate-limited), waiting up to
    /// two seconds; the last line drawn otherwise.
    fn line_showing(progress: &Progress, screen: &Screen, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            progress.bar.tick();
            let line = screen.last_line();
            if line.contains(expected) || Instant::now() > deadline {
                return line;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn drawn_on(screen: &Screen, total: Option<u64>, measure: Measure) -> Progress {
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        Progress::on(Some(target), total, measure, "rows")
    }

    #[test]
    fn a_known_total_draws_a_bar_with_count_rate_and_time_left() {
        let screen = Screen::default();
        let progress = drawn_on(&screen, Some(10_000), Measure::Count).with_label("fitting");
        progress.inc(1_234);
        let line = line_showing(&progress, &screen, "1,234/");
        assert!(line.starts_with("         fitting [===>"), "{line}");
        assert!(line.contains("] 1,234/10,000 rows · "), "{line}");
        assert!(line.contains(" rows/s · ETA "), "{line}");
        progress.clear();
    }

    #[test]
    fn a_file_of_known_size_draws_the_share_of_bytes_read_and_the_rows() {
        let screen = Screen::default();
        let progress = drawn_on(&screen, Some(1_000), Measure::Bytes);
        progress.inc(1_234);
        progress.set_bytes(430);
        let line = line_showing(&progress, &screen, "43%");
        assert!(line.starts_with("[============>"), "{line}");
        assert!(line.contains("] 43% · 1,234 rows · "), "{line}");
        assert!(line.contains(" rows/s · ETA "), "{line}");
        progress.finish();
    }

    #[test]
    fn an_unknown_total_draws_a_spinner_with_count_and_rate() {
        let screen = Screen::default();
        let progress = drawn_on(&screen, None, Measure::Unbounded);
        progress.inc(5);
        progress.set_bytes(1_000);
        let line = line_showing(&progress, &screen, " 5 rows");
        assert!(line.contains(" 5 rows · "), "{line}");
        assert!(line.contains(" rows/s · "), "{line}");
        assert!(!line.contains('['), "{line}");
        progress.clear();
    }

    #[test]
    fn a_hidden_display_counts_without_drawing() {
        let progress = Progress::hidden();
        assert!(!progress.drawn);
        progress.inc(3);
        progress.set_bytes(100);
        progress.inc(2);
        assert_eq!(progress.count(), 5);
        assert_eq!(progress.suspend(|| 7), 7);
        progress.finish();
    }
}
