//! Server settings, layered: built-in defaults < `mlserve.toml` < `MLSERVE_*` environment
//! variables < command-line flags.
//!
//! A setting is written in three places: its field and doc in [`Settings`], its default, and its
//! flag in [`SettingsFlags`] (clap reads the flag and its environment variable, so `--help` lists
//! both). The layers are merged as TOML tables, each overriding the one below key by key, and
//! the result is read into [`Settings`], which refuses unknown keys. figment does the same merge,
//! but its TOML provider needs toml 0.8 beside the 0.9 the crate uses (a second copy of the
//! parser to compile), and its environment provider would not show variables in `--help`;
//! without those two it is the merge of two tables, which the toml crate gives.

mod grpc_addr;
mod tls;

pub use grpc_addr::GrpcAddr;
pub use tls::TlsFiles;

use crate::model::UnknownFields;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The effective settings of `mlserve serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Address of the gRPC listener (the Open Inference Protocol's `GRPCInferenceService`,
    /// health and reflection), or `off`.
    pub grpc_addr: GrpcAddr,
    /// Largest gRPC message taken or sent, in bytes.
    pub grpc_max_message_bytes: usize,
    /// Also serve gRPC on the HTTP port (HTTP/2 without TLS, "h2c", beside HTTP/1.1), for
    /// platforms that give a container one port (Knative, KServe serverless).
    pub grpc_on_http_port: bool,
    /// TLS for both listeners: the certificate chain (PEM), read again when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS: the private key (PEM), read again when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Model repository folder.
    pub models: PathBuf,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most rows in one batch request.
    pub max_batch_rows: usize,
    /// Largest CSV file accepted by the web UI's batch upload, in bytes.
    pub max_upload_bytes: usize,
    /// Longest time a request may take, in seconds.
    pub request_timeout_secs: f64,
    /// Log filter (`info`, `debug`, or a tracing filter such as `mlserve=debug,info`).
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Folder for daily-rotated log files, besides the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// What to do with request fields that are not features.
    pub unknown_fields: UnknownFields,
    /// Train the demo models into an empty repository before serving.
    pub demo_models: bool,
    /// Watch the repository folder and reload changed models.
    pub watch: bool,
    /// Store every prediction in the database.
    pub prediction_log: bool,
    /// The prediction database: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    pub database_url: String,
    /// How long logged predictions are kept: a whole number and s, m, h or d (`30d`).
    pub prediction_log_retention: String,
    /// Most bytes the log's rows and indexes may take before the oldest are deleted (see
    /// [`crate::store::Store::log_bytes`]).
    pub prediction_log_max_bytes: u64,
    /// The fraction of requests logged, in (0, 1] (a request whole or not at all, by its id).
    pub prediction_log_sample_rate: f64,
    /// The models whose predictions are logged; empty for every model.
    pub prediction_log_models: Vec<String>,
    /// Features never written to the log (left out of every logged row).
    pub prediction_log_exclude_features: Vec<String>,
    /// Features written to the log as a keyed hash (HMAC-SHA-256 under
    /// `prediction_log_hash_key`) rather than their value.
    pub prediction_log_hash_features: Vec<String>,
    /// The secret key of the hashed features: at least 16 characters, kept across restarts
    /// so equal values keep equal hashes.
    pub prediction_log_hash_key: String,
    /// Require an API key or HTTP Basic credentials (health probes and docs stay open).
    pub auth: bool,
    /// The keys file: API keys and users as argon2id hashes (`mlserve keys`).
    pub keys_file: PathBuf,
    /// Require credentials for /metrics too.
    pub metrics_auth: bool,
    /// Requests in flight beyond which new ones are refused with 503.
    pub max_concurrent_requests: usize,
    /// Requests a second allowed per key or user (0: no limit).
    pub rate_limit_per_sec: f64,
    /// Requests a key or user may make at once above its rate.
    pub rate_limit_burst: u32,
    /// ONNX Runtime's shared library, looked for before `ORT_DYLIB_PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<PathBuf>,
    /// ONNX Runtime sessions per ONNX model (each runs one request at a time).
    pub onnx_sessions: usize,
    /// Not ready while any version failed to load, not only while a model has no version
    /// that serves.
    pub strict_readiness: bool,
    /// Longest time a client may take to send a request's headers, in seconds (counted from
    /// a new connection, or from the first byte of a later request on a kept-alive one).
    pub header_read_timeout_secs: f64,
    /// Longest time a kept-alive connection may sit idle between requests, in seconds.
    pub keep_alive_timeout_secs: f64,
    /// Most connections open at once (lowered to what the descriptor limit allows).
    pub max_connections: usize,
    /// KernelSHAP's budget: coalitions evaluated for each explained row of a model without an
    /// exact explanation (k-NN, SVM, naive Bayes, ONNX graphs).
    pub explain_samples: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: GrpcAddr::default(),
            grpc_max_message_bytes: 16 * 1024 * 1024,
            grpc_on_http_port: false,
            tls_cert_file: None,
            tls_key_file: None,
            models: PathBuf::from("models"),
            max_body_bytes: 2 * 1024 * 1024,
            max_batch_rows: 1000,
            max_upload_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 30.0,
            log_level: "info".to_string(),
            log_format: LogFormat::Auto,
            log_dir: None,
            unknown_fields: UnknownFields::Reject,
            demo_models: false,
            watch: true,
            prediction_log: true,
            database_url: "sqlite://data/predictions.db".to_string(),
            prediction_log_retention: "30d".to_string(),
            prediction_log_max_bytes: 10 * 1024 * 1024 * 1024,
            prediction_log_sample_rate: 1.0,
            prediction_log_models: Vec::new(),
            prediction_log_exclude_features: Vec::new(),
            prediction_log_hash_features: Vec::new(),
            prediction_log_hash_key: String::new(),
            auth: false,
            keys_file: PathBuf::from("mlserve-keys.toml"),
            metrics_auth: false,
            max_concurrent_requests: 1024,
            rate_limit_per_sec: 0.0,
            rate_limit_burst: 20,
            onnxruntime: None,
            onnx_sessions: crate::model::imported::OnnxSettings::default().sessions,
            strict_readiness: false,
            header_read_timeout_secs: 10.0,
            keep_alive_timeout_secs: 75.0,
            max_connections: 10_000,
            explain_samples: crate::model::explain::DEFAULT_SAMPLES,
        }
    }
}

/// Settings given on the command line or in the environment; each overrides the file. Those
/// not given are `None`, which the TOML layer leaves out.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct SettingsFlags {
    /// Settings file [default: mlserve.toml, if it exists]
    #[arg(long, env = "MLSERVE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "MLSERVE_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Address of the gRPC listener, port 0 for a free one, or off [default: 127.0.0.1:8081]
    #[arg(long, env = "MLSERVE_GRPC_ADDR", value_name = "ADDR|off")]
    pub grpc_addr: Option<GrpcAddr>,
    /// Largest gRPC message taken or sent, in bytes [default: 16777216]
    #[arg(long, env = "MLSERVE_GRPC_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub grpc_max_message_bytes: Option<usize>,
    /// Also serve gRPC on the HTTP port, as HTTP/2 without TLS (h2c), for one-port platforms such as Knative [default: false]
    #[arg(long, env = "MLSERVE_GRPC_ON_HTTP_PORT", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub grpc_on_http_port: Option<bool>,
    /// TLS for REST and gRPC: the certificate chain, PEM (with --tls-key-file; re-read when it changes) [default: none]
    #[arg(long, env = "MLSERVE_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS: the private key, PEM [default: none]
    #[arg(long, env = "MLSERVE_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Model repository folder [default: models]
    #[arg(long, env = "MLSERVE_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Largest request body in bytes [default: 2097152]
    #[arg(long, env = "MLSERVE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most rows in one batch request [default: 1000]
    #[arg(long, env = "MLSERVE_MAX_BATCH_ROWS", value_name = "ROWS")]
    pub max_batch_rows: Option<usize>,
    /// Largest CSV upload in the web UI, in bytes [default: 33554432]
    #[arg(long, env = "MLSERVE_MAX_UPLOAD_BYTES", value_name = "BYTES")]
    pub max_upload_bytes: Option<usize>,
    /// Request timeout in seconds [default: 30]
    #[arg(
        long,
        env = "MLSERVE_REQUEST_TIMEOUT_SECS",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub request_timeout_secs: Option<f64>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive [default: info]
    #[arg(long, env = "MLSERVE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format [default: auto: human on a terminal, JSON otherwise]
    #[arg(long, env = "MLSERVE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Also write daily-rotated log files into this folder
    #[arg(long, env = "MLSERVE_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Request fields that are not features: reject (422) or ignore [default: reject]
    #[arg(long, env = "MLSERVE_UNKNOWN_FIELDS", value_enum)]
    pub unknown_fields: Option<UnknownFields>,
    /// Train the demo models (breast_cancer, iris) into an empty repository first
    #[arg(long, env = "MLSERVE_DEMO_MODELS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub demo_models: Option<bool>,
    /// Watch the repository and reload changed models [default: true]
    #[arg(long, env = "MLSERVE_WATCH", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub watch: Option<bool>,
    /// Store every prediction in the database [default: true]
    #[arg(long, env = "MLSERVE_PREDICTION_LOG", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub prediction_log: Option<bool>,
    /// Prediction database: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [default: sqlite://data/predictions.db]
    #[arg(long, env = "MLSERVE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// How long logged predictions are kept, such as 30d, 12h or 90s [default: 30d]
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_RETENTION",
        value_name = "DURATION"
    )]
    pub prediction_log_retention: Option<String>,
    /// Most bytes the log may take before its oldest rows are deleted [default: 10737418240, 10 GiB]
    #[arg(long, env = "MLSERVE_PREDICTION_LOG_MAX_BYTES", value_name = "BYTES")]
    pub prediction_log_max_bytes: Option<u64>,
    /// The fraction of requests logged, above 0 and at most 1, chosen by request id [default: 1]
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_SAMPLE_RATE",
        value_name = "FRACTION"
    )]
    pub prediction_log_sample_rate: Option<f64>,
    /// Log only these models' predictions, comma-separated [default: every model]
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_MODELS",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub prediction_log_models: Option<Vec<String>>,
    /// Features never written to the log, comma-separated [default: none]
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_EXCLUDE_FEATURES",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub prediction_log_exclude_features: Option<Vec<String>>,
    /// Features logged as a keyed hash (HMAC-SHA-256) instead of their value, comma-separated [default: none]
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_HASH_FEATURES",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub prediction_log_hash_features: Option<Vec<String>>,
    /// The secret key of hashed features, at least 16 characters; prefer the variable to the flag
    #[arg(
        long,
        env = "MLSERVE_PREDICTION_LOG_HASH_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_log_hash_key: Option<String>,
    /// Require an API key or HTTP Basic credentials [default: false]
    #[arg(long, env = "MLSERVE_AUTH", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub auth: Option<bool>,
    /// Keys file with API keys and users (argon2id hashes) [default: mlserve-keys.toml]
    #[arg(long, env = "MLSERVE_KEYS_FILE", value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
    /// Require credentials for /metrics too [default: false]
    #[arg(long, env = "MLSERVE_METRICS_AUTH", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub metrics_auth: Option<bool>,
    /// Requests in flight beyond which new ones get 503 [default: 1024]
    #[arg(long, env = "MLSERVE_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub max_concurrent_requests: Option<usize>,
    /// Requests a second per key or user, 0 for no limit [default: 0]
    #[arg(long, env = "MLSERVE_RATE_LIMIT_PER_SEC", value_name = "RATE")]
    pub rate_limit_per_sec: Option<f64>,
    /// Burst above the rate per key or user [default: 20]
    #[arg(long, env = "MLSERVE_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// ONNX Runtime's library (libonnxruntime.so) [default: $ORT_DYLIB_PATH, then target/onnxruntime/]
    #[arg(long, env = "MLSERVE_ONNXRUNTIME", value_name = "FILE")]
    pub onnxruntime: Option<PathBuf>,
    /// ONNX Runtime sessions per ONNX model [default: the CPU count, at most 4]
    #[arg(long, env = "MLSERVE_ONNX_SESSIONS", value_name = "N")]
    pub onnx_sessions: Option<usize>,
    /// Not ready while any version failed to load, not only while a model has none that serves [default: false]
    #[arg(long, env = "MLSERVE_STRICT_READINESS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub strict_readiness: Option<bool>,
    /// Seconds a client may take to send a request's headers [default: 10]
    #[arg(long, env = "MLSERVE_HEADER_READ_TIMEOUT_SECS", value_name = "SECONDS")]
    pub header_read_timeout_secs: Option<f64>,
    /// Seconds a kept-alive connection may stay idle between requests [default: 75]
    #[arg(long, env = "MLSERVE_KEEP_ALIVE_TIMEOUT_SECS", value_name = "SECONDS")]
    pub keep_alive_timeout_secs: Option<f64>,
    /// Most connections open at once, lowered to what the open-file limit allows [default: 10000]
    #[arg(long, env = "MLSERVE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// KernelSHAP's coalitions per explained row, 2 to 100000 [default: 1000]
    #[arg(long, env = "MLSERVE_EXPLAIN_SAMPLES", value_name = "N")]
    pub explain_samples: Option<usize>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings file cannot be read.
    #[error("cannot read settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The settings file is not valid.
    #[error("settings file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl SettingsFlags {
    /// Merges flags and environment over the settings file over the defaults, and checks the result.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let (path, file) = read_file(self.config.as_deref())?;
        let mut merged = table_of(&Settings::default(), "the defaults")?;
        merged.extend(file);
        merged.extend(table_of(self, "the flags")?);
        let settings: Settings = merged.try_into().map_err(|error: toml::de::Error| {
            // Flags and variables are typed by clap and the defaults are right: what does not
            // fit is the file's.
            ConfigError::Parse {
                path: path.unwrap_or_default(),
                message: error.to_string().trim().replace('\n', " "),
            }
        })?;
        settings.check()?;
        Ok(settings)
    }
}

/// A layer as a TOML table (a `None` setting is left out, so it does not override).
fn table_of(layer: &impl Serialize, name: &'static str) -> Result<toml::Table, ConfigError> {
    toml::Table::try_from(layer).map_err(|error| ConfigError::Invalid {
        name,
        message: error.to_string(),
    })
}

/// The settings file's table, and its path when there is one.
fn read_file(explicit: Option<&Path>) -> Result<(Option<PathBuf>, toml::Table), ConfigError> {
    let default_path = Path::new("mlserve.toml");
    let path = match explicit {
        Some(path) => path,
        None if default_path.exists() => default_path,
        None => return Ok((None, toml::Table::new())),
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table = text
        .parse::<toml::Table>()
        .map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string().trim().replace('\n', " "),
        })?;
    Ok((Some(path.to_path_buf()), table))
}

impl Settings {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |name, message: &str| {
            Err(ConfigError::Invalid {
                name,
                message: message.to_string(),
            })
        };
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes", "must be at least 1");
        }
        if self.max_batch_rows == 0 {
            return invalid("max_batch_rows", "must be at least 1");
        }
        if self.grpc_addr == GrpcAddr::At(self.addr) && self.addr.port() != 0 {
            return invalid(
                "grpc_addr",
                &format!("{} is addr too: give gRPC a port of its own", self.addr),
            );
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return invalid(
                if self.tls_cert_file.is_some() {
                    "tls_key_file"
                } else {
                    "tls_cert_file"
                },
                "TLS needs both tls_cert_file and tls_key_file",
            );
        }
        if !(1024..=i32::MAX as usize).contains(&self.grpc_max_message_bytes) {
            return invalid(
                "grpc_max_message_bytes",
                "must be from 1024 to 2147483647 (gRPC's largest message)",
            );
        }
        if self.prediction_log && crate::store::Backend::of(&self.database_url).is_none() {
            return invalid(
                "database_url",
                &format!(
                    "'{}' is not supported: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
                    crate::store::redact(&self.database_url)
                ),
            );
        }
        if crate::store::retention::parse_duration(&self.prediction_log_retention).is_none() {
            return invalid(
                "prediction_log_retention",
                &format!(
                    "'{}' is not a duration: a whole number and s, m, h or d, such as 30d, 12h or 90s",
                    self.prediction_log_retention
                ),
            );
        }
        if !(self.prediction_log_sample_rate > 0.0 && self.prediction_log_sample_rate <= 1.0) {
            return invalid(
                "prediction_log_sample_rate",
                "must be a fraction above 0 and at most 1 (1 logs every request)",
            );
        }
        if let Some(both) = self
            .prediction_log_hash_features
            .iter()
            .find(|name| self.prediction_log_exclude_features.contains(name))
        {
            return invalid(
                "prediction_log_hash_features",
                &format!("'{both}' is also excluded; a feature is either left out or hashed"),
            );
        }
        if !self.prediction_log_hash_features.is_empty()
            && self.prediction_log_hash_key.chars().count() < 16
        {
            return invalid(
                "prediction_log_hash_key",
                "hashed features need a secret key of at least 16 characters \
                 (MLSERVE_PREDICTION_LOG_HASH_KEY), kept across restarts",
            );
        }
        if self.prediction_log_max_bytes == 0 {
            return invalid("prediction_log_max_bytes", "must be at least 1");
        }
        if self.max_concurrent_requests == 0 {
            return invalid("max_concurrent_requests", "must be at least 1");
        }
        if !(self.rate_limit_per_sec.is_finite() && self.rate_limit_per_sec >= 0.0) {
            return invalid(
                "rate_limit_per_sec",
                "must be a number of requests a second, 0 for no limit",
            );
        }
        if self.rate_limit_burst == 0 {
            return invalid("rate_limit_burst", "must be at least 1");
        }
        if !(1..=64).contains(&self.onnx_sessions) {
            return invalid("onnx_sessions", "must be from 1 to 64");
        }
        if self.max_upload_bytes == 0 {
            return invalid("max_upload_bytes", "must be at least 1");
        }
        if !(self.request_timeout_secs.is_finite()
            && self.request_timeout_secs > 0.0
            && self.request_timeout_secs <= 86_400.0)
        {
            return invalid(
                "request_timeout_secs",
                "must be a number of seconds above 0 and at most 86400",
            );
        }
        for (name, seconds) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs),
        ] {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
                return invalid(
                    name,
                    "must be a number of seconds above 0 and at most 86400",
                );
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if !(2..=100_000).contains(&self.explain_samples) {
            return invalid("explain_samples", "must be 2 to 100000");
        }
        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            return invalid(
                "log_level",
                &format!("'{}' is not a log filter: {error}", self.log_level),
            );
        }
        Ok(())
    }

    /// The ONNX backend's settings.
    pub fn onnx(&self) -> crate::model::imported::OnnxSettings {
        crate::model::imported::OnnxSettings {
            library: self.onnxruntime.clone(),
            sessions: self.onnx_sessions,
        }
    }

    /// How long and how much the prediction log keeps.
    pub fn retention(&self) -> crate::store::retention::Retention {
        crate::store::retention::Retention {
            max_age: crate::store::retention::parse_duration(&self.prediction_log_retention)
                .unwrap_or(std::time::Duration::from_secs(30 * 86_400)),
            max_bytes: self.prediction_log_max_bytes,
        }
    }

    /// The TLS files, when TLS is on.
    pub fn tls(&self) -> Option<TlsFiles> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.request_timeout_secs)
    }

    /// The header read timeout.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.header_read_timeout_secs)
    }

    /// The idle timeout of kept-alive connections.
    pub fn keep_alive_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.keep_alive_timeout_secs)
    }
}

#[cfg(test)]
mod tests;
