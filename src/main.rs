//! The `mlserve` command line: a thin layer over the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mlserve::config::SettingsFlags;
use mlserve::data::{BundledDataset, CsvOptions, Dataset, load_bundled, load_csv};
use mlserve::train::{
    Algorithm, AlgorithmParams, HyperParameterFlags, Progress, TrainError, TrainOptions,
    TrainedModel,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

/// Exit code for a problem the user can fix (bad input, bad flag), as clap uses for bad usage.
const EXIT_USAGE: u8 = 2;

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
struct Cli {
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
    Predict(PredictArgs),
    /// Import a model exported as ONNX (scikit-learn through skl2onnx) as a new version in the
    /// repository, reading its inputs, classes, categories and imputed features from the graph.
    Import(ImportArgs),
    /// Manage API keys and HTTP Basic users (kept as argon2id hashes in the keys file).
    #[command(subcommand)]
    Keys(KeysCommand),
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
    /// Output CSV: the input columns, then label and probability_<label> columns
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    repository: RepositoryArg,
    /// Stop at the first bad row (exit code 2) instead of skipping it (exit code 3 at the end)
    #[arg(long)]
    fail_fast: bool,
    /// Print nothing but errors
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
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The ONNX file
    #[arg(value_name = "MODEL.onnx")]
    graph: PathBuf,
    /// Model name in the repository (a new version is added if it exists)
    #[arg(long)]
    name: String,
    #[command(flatten)]
    repository: RepositoryArg,
    /// Feature names, one a line, in the order of the graph's input columns
    #[arg(long, value_name = "FILE", conflicts_with = "features_from")]
    features: Option<PathBuf>,
    /// A CSV whose header names the features (extra columns such as the target are left out
    /// when the graph has one input per column); its rows, if any, give the training ranges,
    /// the example row and the drift baseline
    #[arg(long, value_name = "CSV")]
    features_from: Option<PathBuf>,
    /// Class labels in the order of the classifier's classes (replacing the graph's, such as 0,1)
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    labels: Option<Vec<String>>,
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
    /// The CSV column holding the class
    #[arg(long, value_name = "COLUMN", requires = "csv")]
    target: Option<String>,
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
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
    /// Also write log lines to this file
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
}

/// Exit code of `mlserve predict` when some rows were skipped (the output holds the others).
const EXIT_ROWS_SKIPPED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Train(args)) => run_train(args),
        Some(Command::Serve(args)) => run_serve(args.settings),
        Some(Command::Config(args)) => print_config(&args.settings),
        Some(Command::Predict(args)) => run_predict(&args),
        Some(Command::Import(args)) => run_import(args),
        Some(Command::Healthcheck(args)) => run_healthcheck(&args),
        Some(Command::Keys(command)) => run_keys(command),
        None => run_serve(SettingsFlags {
            demo_models: cli.settings.demo_models.or(Some(true)),
            ..cli.settings
        }),
    }
}

fn run_keys(command: KeysCommand) -> ExitCode {
    use mlserve::serve::auth::keys::KeysFile;
    let path = match &command {
        KeysCommand::Create { file, .. }
        | KeysCommand::AddUser { file, .. }
        | KeysCommand::List { file }
        | KeysCommand::Revoke { file, .. } => file.keys_file.clone(),
    };
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_USAGE)
    };
    let mut keys = match KeysFile::load(&path) {
        Ok(keys) => keys,
        Err(error) => return fail(error.to_string()),
    };
    match command {
        KeysCommand::Create { name, role, .. } => {
            let key = match keys.create_key(&name, role) {
                Ok(key) => key,
                Err(error) => return fail(error.to_string()),
            };
            if let Err(error) = keys.save(&path) {
                return fail(error.to_string());
            }
            eprintln!(
                "created key '{name}' ({}) in {}; it is shown only now:",
                role.name(),
                path.display()
            );
            println!("{key}");
        }
        KeysCommand::AddUser { name, role, .. } => {
            let mut password = String::new();
            if let Err(error) = std::io::stdin().read_line(&mut password) {
                return fail(format!(
                    "cannot read the password from standard input: {error}"
                ));
            }
            let password = password.trim_end_matches(['\r', '\n']);
            if let Err(error) = keys.add_user(&name, role, password) {
                return fail(error.to_string());
            }
            if let Err(error) = keys.save(&path) {
                return fail(error.to_string());
            }
            eprintln!(
                "added user '{name}' ({}) to {}",
                role.name(),
                path.display()
            );
        }
        KeysCommand::List { .. } => {
            for key in &keys.keys {
                println!(
                    "key  {:<24} {:<8} mls_{}_…  created {}",
                    key.name,
                    key.role.name(),
                    key.id,
                    key.created_at
                );
            }
            for user in &keys.users {
                println!(
                    "user {:<24} {:<8} created {}",
                    user.name,
                    user.role.name(),
                    user.created_at
                );
            }
        }
        KeysCommand::Revoke { name, .. } => {
            if !keys.revoke(&name) {
                return fail(format!(
                    "no key or user named '{name}' in {}",
                    path.display()
                ));
            }
            if let Err(error) = keys.save(&path) {
                return fail(error.to_string());
            }
            eprintln!("revoked '{name}'; restart running servers to apply");
        }
    }
    ExitCode::SUCCESS
}

fn print_config(flags: &SettingsFlags) -> ExitCode {
    match flags.resolve() {
        Ok(settings) => match toml::to_string(&settings) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run_serve(flags: SettingsFlags) -> ExitCode {
    let settings = match flags.resolve() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let _guard = match mlserve::logging::init(
        &settings.log_level,
        settings.log_format,
        settings.log_dir.as_deref(),
    ) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if settings.demo_models {
        match mlserve::train::train_demo_models_if_empty(&settings.models) {
            Ok(written) if !written.is_empty() => {
                tracing::info!(models = ?written, dir = %settings.models.display(), "the repository was empty: trained the demo models");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot train the demo models");
                eprintln!("error: cannot train the demo models: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mlserve::serve::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            error @ (mlserve::serve::ServeError::Bind { .. }
            | mlserve::serve::ServeError::NoRepository(_)
            | mlserve::serve::ServeError::Keys(_)
            | mlserve::serve::ServeError::NoKeys(_)
            | mlserve::serve::ServeError::Store(_)),
        ) => {
            tracing::error!(%error, "cannot start");
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code of a failed `train` or `import`: writing the artifact is the only failure a user
/// cannot fix by changing the command (1); anything else is a usage error (2).
fn artifact_exit_code(write_failed: bool) -> ExitCode {
    ExitCode::from(if write_failed { 1 } else { EXIT_USAGE })
}

fn run_healthcheck(args: &HealthcheckArgs) -> ExitCode {
    // A zero timeout would mean "none" to the socket calls: at least a millisecond.
    let timeout = std::time::Duration::try_from_secs_f64(args.timeout_secs)
        .unwrap_or(std::time::Duration::from_secs(3))
        .max(std::time::Duration::from_millis(1));
    match mlserve::serve::health::probe(args.addr, &args.path, timeout) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("{}{}: {status}", args.addr, args.path);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{}{}: {error}", args.addr, args.path);
            ExitCode::FAILURE
        }
    }
}

fn run_import(args: ImportArgs) -> ExitCode {
    use mlserve::import::{FeatureNames, ImportError, ImportOptions, import_onnx};
    let options = ImportOptions {
        graph: args.graph,
        name: args.name,
        models: args.repository.models,
        features: match (args.features, args.features_from) {
            (Some(file), _) => FeatureNames::File(file),
            (None, Some(csv)) => FeatureNames::Csv(csv),
            (None, None) => FeatureNames::FromGraph,
        },
        labels: args.labels,
        onnxruntime: args.onnxruntime,
    };
    match import_onnx(&options) {
        Ok(imported) => {
            let m = &imported.manifest;
            println!(
                "imported {} as {}/{} in {}",
                options.graph.display(),
                m.name,
                imported.version,
                imported.dir.display()
            );
            println!("  classes: {}", m.labels.join(", "));
            for input in m.onnx.iter().flat_map(|b| &b.inputs) {
                println!(
                    "  graph input {} <- {}",
                    input.name,
                    input.features.join(", ")
                );
            }
            for feature in &m.features {
                println!(
                    "  feature {}: {}{}",
                    feature.name,
                    feature.kind.name(),
                    if feature.nullable {
                        ", nullable (the graph imputes it)"
                    } else {
                        ""
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            artifact_exit_code(matches!(
                error,
                ImportError::Artifact(mlserve::model::ArtifactError::Io { .. })
            ))
        }
    }
}

fn run_predict(args: &PredictArgs) -> ExitCode {
    match predict_command(args) {
        Ok(summary) if summary.skipped > 0 => {
            if !args.quiet {
                eprintln!(
                    "predicted {} rows into {}; skipped {} bad rows (listed above)",
                    summary.predicted,
                    args.output.display(),
                    summary.skipped
                );
            }
            ExitCode::from(EXIT_ROWS_SKIPPED)
        }
        Ok(summary) => {
            if !args.quiet {
                eprintln!(
                    "predicted {} rows into {}",
                    summary.predicted,
                    args.output.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn predict_command(args: &PredictArgs) -> anyhow::Result<mlserve::model::batch::BatchSummary> {
    let (name, version) = match args.model.split_once('/') {
        Some((name, version)) => (name, Some(version)),
        None => (args.model.as_str(), None),
    };
    mlserve::model::validate_model_name(name)?;
    mlserve::model::imported::configure(mlserve::model::imported::OnnxSettings {
        library: args.onnxruntime.clone(),
        ..Default::default()
    });
    let repository = mlserve::model::Repository::new(&args.repository.models);
    let report = repository.reload_model(name).with_context(|| {
        format!(
            "no model named '{name}' in {}",
            args.repository.models.display()
        )
    })?;
    let catalog = repository.catalog();
    let model = catalog.resolve(name, version).map_err(|failure| {
        let failures = report.failed.join("; ");
        anyhow::anyhow!(
            "{failure}{}",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" ({failures})")
            }
        )
    })?;
    let input = &args.input;
    let mut report_bad_row = |bad: &mlserve::model::batch::BadRow| {
        eprintln!(
            "{}:{}: skipped: {}",
            input.display(),
            bad.line,
            mlserve::model::batch::describe(&bad.errors)
        );
    };
    let summary = mlserve::model::batch::predict_csv(
        &model,
        input,
        &args.output,
        args.fail_fast,
        &mut report_bad_row,
    )?;
    Ok(summary)
}

fn run_train(args: TrainArgs) -> ExitCode {
    if let Err(error) = init_logging(args.log_file.as_deref()) {
        eprintln!("error: {error:#}");
        return ExitCode::from(EXIT_USAGE);
    }
    match train_command(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "training failed");
            eprintln!("error: {error}");
            artifact_exit_code(matches!(
                error,
                TrainError::Artifact(mlserve::model::ArtifactError::Io { .. })
            ))
        }
    }
}

fn init_logging(log_file: Option<&Path>) -> anyhow::Result<()> {
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    let file = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file))
                    .with_filter(EnvFilter::new("info")),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(console)
        .with(file)
        .init();
    Ok(())
}

fn load_dataset(args: &TrainArgs) -> Result<(Dataset, String), TrainError> {
    if let Some(which) = args.dataset {
        return Ok((load_bundled(which), which.model_name().to_string()));
    }
    // clap's argument group guarantees one source; --csv requires --target.
    let path = args.csv.clone().unwrap_or_default();
    let options = CsvOptions {
        target: args.target.clone().unwrap_or_default(),
        categorical: args.categorical.clone(),
    };
    let data = load_csv(&path, &options)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    Ok((data, stem))
}

fn train_command(args: &TrainArgs) -> Result<(), TrainError> {
    let params = AlgorithmParams::from_flags(args.algorithm, &args.hyper)?;
    let (data, default_name) = load_dataset(args)?;
    let name = args.name.clone().unwrap_or(default_name);
    mlserve::model::validate_model_name(&name).map_err(TrainError::Artifact)?;
    tracing::info!(source = %data.source, rows = data.n_rows(), algorithm = args.algorithm.cli_name(), "training");
    let options = TrainOptions {
        params,
        test_size: args.test_size,
        seed: args.seed,
        cv: args.cv,
    };
    let started = std::time::Instant::now();
    let progress = BarProgress::new(args.quiet);
    let trained = mlserve::train::train(&data, &options, &progress)?;
    let elapsed = started.elapsed();
    let (version, dir) = trained.save(&args.repository.models, &name)?;
    tracing::info!(model = %name, version, dir = %dir.display(), seconds = elapsed.as_secs_f64(), "model written");
    if !args.quiet {
        print_summary(&trained, &name, version, &dir, elapsed);
    }
    Ok(())
}

fn print_summary(
    trained: &TrainedModel,
    name: &str,
    version: u32,
    dir: &Path,
    elapsed: std::time::Duration,
) {
    let e = &trained.metrics.evaluation;
    let p = &trained.provenance;
    println!(
        "Trained {name} v{version}: {} on {} ({} training rows, {} test rows) in {:.0} ms",
        p.estimator.algorithm().cli_name(),
        p.dataset,
        p.train_rows,
        p.test_rows,
        elapsed.as_secs_f64() * 1000.0
    );
    println!();
    println!("  accuracy            {:.4}", e.accuracy);
    println!("  precision (macro)   {:.4}", e.precision_macro);
    println!("  recall (macro)      {:.4}", e.recall_macro);
    println!("  F1 (macro)          {:.4}", e.f1_macro);
    match e.roc_auc {
        Some(auc) => println!("  ROC AUC             {auc:.4}"),
        None => {
            println!("  ROC AUC             undefined (a class is missing from the test split)")
        }
    }
    println!("  log loss            {:.4}", e.log_loss);
    if let Some(cv) = &trained.metrics.cv {
        println!(
            "  {}-fold CV accuracy  {:.4} ± {:.4}",
            cv.folds, cv.accuracy.mean, cv.accuracy.std
        );
    }
    let width = e
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!();
    println!("  {:width$}  precision  recall      F1  support", "class");
    for label in &e.labels {
        if let Some(m) = e.per_class.get(label) {
            println!(
                "  {label:width$}  {:9.4}  {:6.4}  {:6.4}  {:7}",
                m.precision, m.recall, m.f1, m.support
            );
        }
    }
    println!();
    println!("  confusion matrix (rows: true, columns: predicted)");
    let cell = e
        .confusion_matrix
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(width.min(12));
    print!("  {:width$}", "");
    for label in &e.labels {
        let short: String = label.chars().take(cell).collect();
        print!("  {short:>cell$}");
    }
    println!();
    for (label, row) in e.labels.iter().zip(&e.confusion_matrix) {
        print!("  {label:width$}");
        for count in row {
            print!("  {count:>cell$}");
        }
        println!();
    }
    println!();
    println!("Wrote {}", dir.display());
}

/// An indicatif progress bar on stderr, hidden with --quiet or when stderr is not a terminal.
struct BarProgress {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    fn new(quiet: bool) -> Self {
        BarProgress {
            quiet,
            bar: Mutex::new(None),
        }
    }
}

impl Progress for BarProgress {
    fn start(&self, message: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(total).with_message(message.to_string());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, steps: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}
