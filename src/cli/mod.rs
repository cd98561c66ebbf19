//! The command line's flags and commands (clap), one file per command, and [`Failure`]: how a
//! command that failed reaches `main`, the one place that prints errors and sets exit codes.

mod import;
mod keys;
mod log;
mod predict;
mod probe_tls;
mod progress;
mod serve;
mod train;

use clap::{Parser, Subcommand};
use mlserve::config::SettingsFlags;
use mlserve::data::BundledDataset;
use mlserve::train::{Algorithm, HyperParameterFlags};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a problem the user can fix (bad input, bad flag), as clap uses for bad usage.
const EXIT_USAGE: u8 = 2;

/// Exit code of `mlserve predict` when some rows were skipped (the output holds the others).
const EXIT_ROWS_SKIPPED: u8 = 3;

/// A command that failed: what to tell the user, and the exit code.
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A problem the user can fix: exit code 2.
    fn usage(message: impl std::fmt::Display) -> Self {
        Failure {
            message: message.to_string(),
            code: EXIT_USAGE,
        }
    }

    /// A failure the user cannot fix by changing the command: exit code 1.
    fn fault(message: impl std::fmt::Display) -> Self {
        Failure {
            message: message.to_string(),
            code: 1,
        }
    }

    /// A failed `train` or `import`: writing the artifact is the only failure a user cannot
    /// fix by changing the command (1); anything else is a usage error (2).
    fn artifact(message: impl std::fmt::Display, write_failed: bool) -> Self {
        if write_failed {
            Self::fault(message)
        } else {
            Self::usage(message)
        }
    }

    /// Prints the message and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Runs the command line's command.
pub(crate) fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Serve(args)) => serve::run(args.settings),
        Some(Command::Config(args)) => serve::print_config(&args.settings),
        Some(Command::Predict(args)) => predict::run(&args),
        Some(Command::Import(args)) => import::run(args),
        Some(Command::Healthcheck(args)) => serve::healthcheck(&args),
        Some(Command::Keys(command)) => keys::run(command),
        Some(Command::Log(command)) => log::run(command),
        None => serve::run(SettingsFlags {
            demo_models: cli.settings.demo_models.or(Some(true)),
            ..cli.settings
        }),
    }
}

#[derive(Parser)]
#[command(
    name = "mlserve",
    version,
    about = "Train classic tabular models and serve them over REST",
    long_about = "Train classic tabular models and serve them over REST.\n\n\
        Without a command, mlserve serves ./models on 127.0.0.1:8080, training the demo models \
        (breast_cancer, iris) first when the repository is empty: the same as `mlserve serve --demo-models`."
)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Server settings when no command is given (the same as `serve`'s).
    #[command(flatten)]
    settings: SettingsFlags,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a bundled dataset or a CSV file, evaluate it, and write a new version
    /// of it into the model repository.
    Train(TrainArgs),
    /// Serve every model of the repository over REST (settings: defaults < mlserve.toml <
    /// MLSERVE_* variables < flags).
    Serve(ServeArgs),
    /// Print the effective server settings as TOML, after every layer is applied.
    Config(ServeArgs),
    /// Predict a CSV file offline with a model of the repository, streaming row by row.
    ///
    /// On a terminal, stderr shows the progress: the share of the input read, rows done, rows
    /// per second and the time left (a count and rate when the input's size is unknown, as for
    /// a pipe), then a summary line. Nothing is drawn when stderr is not a terminal or with
    /// --quiet, and nothing but the predictions goes to the output.
    Predict(PredictArgs),
    /// Import a model file as a new version in the model repository: an ONNX graph
    /// (scikit-learn through skl2onnx), an XGBoost model saved as JSON or UBJSON, or a LightGBM
    /// text model, recognised by content; or an MLflow model folder that keeps one of them
    Import(ImportArgs),
    /// Manage API keys and HTTP Basic users (kept as argon2id hashes in the keys file).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the prediction log: export a model's predictions as CSV or JSON Lines.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Ask a running server whether it is ready: exit code 0 when GET /health/ready answers 200,
    /// 1 otherwise (a container HEALTHCHECK without curl or a shell).
    Healthcheck(HealthcheckArgs),
}

/// The keys file flag.
#[derive(clap::Args)]
struct KeysFileArg {
    /// Keys file
    #[arg(
        long,
        value_name = "FILE",
        default_value = "mlserve-keys.toml",
        env = "MLSERVE_KEYS_FILE"
    )]
    keys_file: PathBuf,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print it: the only time it is shown.
    Create {
        /// Who or what uses the key (shown in logs and the prediction log)
        #[arg(long)]
        name: String,
        /// What the key may do
        #[arg(long, value_enum, default_value = "predict")]
        role: mlserve::serve::auth::keys::Role,
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// Add an HTTP Basic user; the password is read from standard input (one line).
    AddUser {
        /// User name
        #[arg(long)]
        name: String,
        /// What the user may do
        #[arg(long, value_enum, default_value = "predict")]
        role: mlserve::serve::auth::keys::Role,
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// List keys and users (names, roles, key ids; never secrets).
    List {
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// Remove a key or user by name (a running server keeps it until restarted).
    Revoke {
        /// The key's or user's name
        #[arg(long)]
        name: String,
        #[command(flatten)]
        file: KeysFileArg,
    },
}

/// The model repository flag, shared by the commands that read or write it.
#[derive(clap::Args)]
struct RepositoryArg {
    /// Model repository folder
    #[arg(
        long,
        value_name = "DIR",
        default_value = "models",
        env = "MLSERVE_MODELS"
    )]
    models: PathBuf,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    settings: SettingsFlags,
}

#[derive(clap::Args)]
struct PredictArgs {
    /// The model, as NAME (its default version) or NAME/VERSION
    #[arg(long, value_name = "NAME[/VERSION]")]
    model: String,
    /// Input CSV with a header row naming the features (other columns pass through)
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Output CSV: the input columns, then label and probability_<label> columns (a regressor:
    /// prediction)
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Also write each row's explanation: base_value and contribution_<feature> columns
    /// (base_value_<label> and contribution_<label>_<feature> for a multiclass model), exact
    /// for linear models and trees, KernelSHAP for the others; a model that cannot explain
    /// stops before any row (exit 2)
    #[arg(long)]
    explain: bool,
    /// KernelSHAP's coalitions per explained row (2 to 100000), for models explained by it
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "explain", value_parser = clap::value_parser!(u32).range(2..=100_000))]
    explain_samples: u32,
    #[command(flatten)]
    repository: RepositoryArg,
    /// Stop at the first bad row (exit code 2) instead of skipping it (exit code 3 at the end)
    #[arg(long)]
    fail_fast: bool,
    /// Print nothing but errors: no progress display and no summary
    #[arg(long, short)]
    quiet: bool,
    /// ONNX Runtime's library, for ONNX models [default: $ORT_DYLIB_PATH, then target/onnxruntime/]
    #[arg(long, env = "MLSERVE_ONNXRUNTIME", value_name = "FILE")]
    onnxruntime: Option<PathBuf>,
}

#[derive(clap::Args)]
struct HealthcheckArgs {
    /// The server's address (0.0.0.0 or :: is asked on loopback)
    #[arg(long, env = "MLSERVE_ADDR", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// The path to ask
    #[arg(long, default_value = "/health/ready")]
    path: String,
    /// Seconds to wait for the answer
    #[arg(long, default_value_t = 3.0)]
    timeout_secs: f64,
    /// Ask over TLS, trusting exactly the server's certificate in this file (as the server's
    /// tls_cert_file)
    #[arg(long, env = "MLSERVE_TLS_CERT_FILE", value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The model file (MODEL.onnx, an XGBoost model.json or model.ubj, a LightGBM model.txt), or
    /// an MLflow model folder that keeps one
    #[arg(value_name = "MODEL")]
    graph: PathBuf,
    /// Model name in the repository (a new version is added if it exists)
    #[arg(long)]
    name: String,
    #[command(flatten)]
    repository: RepositoryArg,
    /// Feature names, one a line, in the order of the model's input columns
    #[arg(long, value_name = "FILE", conflicts_with = "training_data")]
    features: Option<PathBuf>,
    /// The training data, or a sample of it, as CSV: its header names the features (the
    /// --target column and others the model does not read are left out when the model names
    /// its inputs), its rows give the training ranges, category shares, the example row and
    /// the drift baselines (also accepted as --features-from)
    #[arg(long, value_name = "CSV", alias = "features-from")]
    training_data: Option<PathBuf>,
    /// Held-out rows as CSV, with the features' columns and the --target column: the model is
    /// evaluated on them as a trained model is on its held-out split (metrics.json, the card,
    /// the held-out metrics live accuracy is compared with)
    #[arg(long, value_name = "CSV", requires = "target")]
    test_data: Option<PathBuf>,
    /// Rows standing for the training data, as CSV with the features' columns (a few hundred
    /// training rows; more than 100 are summarised by k-means): the background set KernelSHAP
    /// explains an ONNX graph's predictions against (?explain=true); without it an ONNX model
    /// cannot explain. XGBoost and LightGBM models explain exactly and refuse it
    #[arg(long, value_name = "CSV")]
    background: Option<PathBuf>,
    /// Class labels in the order of the classifier's classes (replacing the graph's, such as 0,1)
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// An early-stopped XGBoost model: use every tree the file holds, as Booster.predict does
    /// [default: the trees up to its best_iteration, as XGBClassifier/XGBRegressor predict]
    #[arg(long)]
    all_trees: bool,
    /// What the graph does [default: read from its outputs: a ZipMap, or a label beside a float
    /// [N, C] output, is a classifier; one float [N, 1] output alone, a regressor]
    #[arg(long, value_enum)]
    task: Option<mlserve::data::Task>,
    /// The column of --training-data and --test-data holding the target: a class label, or
    /// the number predicted (left out of the features; for a model that predicts a number, its
    /// training values give the target's range, quartiles and decile bins)
    #[arg(long, value_name = "COLUMN")]
    target: Option<String>,
    /// ONNX Runtime's library [default: $ORT_DYLIB_PATH, then target/onnxruntime/]
    #[arg(long, env = "MLSERVE_ONNXRUNTIME", value_name = "FILE")]
    onnxruntime: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dataset", "csv"])))]
struct TrainArgs {
    /// A bundled dataset
    #[arg(long, value_enum)]
    dataset: Option<BundledDataset>,
    /// A CSV file with a header row (use with --target)
    #[arg(long, value_name = "FILE", requires = "target")]
    csv: Option<PathBuf>,
    /// The CSV column to predict: classes, or a number
    #[arg(long, value_name = "COLUMN", requires = "csv")]
    target: Option<String>,
    /// Classify, or predict a number [default: inferred from the target column: text,
    /// true/false, or at most 20 distinct whole numbers are classes; other numbers, regression]
    #[arg(long, value_enum)]
    task: Option<mlserve::data::Task>,
    /// CSV columns to treat as categorical, comma-separated (others are detected from the data)
    #[arg(long, value_name = "COL,COL", value_delimiter = ',', requires = "csv")]
    categorical: Vec<String>,
    /// The learning algorithm
    #[arg(long, value_enum)]
    algorithm: Algorithm,
    /// Model name [default: the dataset's name, or the CSV file's stem]
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    repository: RepositoryArg,
    /// Share of rows held out for evaluation
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    test_size: f64,
    /// Random seed: the same data, flags and seed give the same model
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also run K-fold cross-validation on the training split
    #[arg(long, value_name = "K")]
    cv: Option<usize>,
    #[command(flatten)]
    hyper: HyperParameterFlags,
    /// Print nothing but errors: no progress bar and no summary
    #[arg(long, short)]
    quiet: bool,
    /// Also write log lines to this file
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
}
