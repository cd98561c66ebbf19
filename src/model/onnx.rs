//! Models exported as ONNX (scikit-learn through skl2onnx), run by ONNX Runtime through the
//! `ort` crate, with the library loaded at run time (`load-dynamic`; see
//! ../shared/notes/onnx-runtime.md). Without the library the server still serves native models
//! and reports ONNX models not ready, with the reason.
//!
//! A graph takes either one float tensor `[N, F]` (the features in order) or one `[N, 1]` tensor
//! per column (float or string). A classifier's probabilities come as a float tensor `[N, C]`,
//! or, with the default ZipMap export, as a sequence of maps from class to probability; labels
//! always come from the argmax of the probabilities, never from the graph's label output. A
//! regressor (skl2onnx's `LinearRegressor`, `TreeEnsembleRegressor`, `SVMRegressor`, a k-NN
//! subgraph, any pipeline ending in one) answers one float tensor `[N, 1]` (or `[N]`) and
//! nothing else.

use crate::data::Task;
use ort::session::Session;
use ort::session::SessionInputValue;
use ort::value::{Tensor, TensorElementType, ValueType};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Errors of the ONNX backend.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The runtime library is missing or unusable.
    #[error("ONNX Runtime is not available: {0}")]
    Runtime(String),
    /// The graph cannot be loaded or run.
    #[error("the ONNX graph {path}: {message}")]
    Graph {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Running the graph failed.
    #[error("ONNX Runtime failed: {0}")]
    Run(String),
}

/// The process's ONNX Runtime environment, made once from the first library path given.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Where the runtime library is looked for: the setting, then `ORT_DYLIB_PATH`, then the
/// folder `scripts/fetch-onnxruntime.sh` fills.
fn library_candidates(setting: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = setting {
        candidates.push(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("target/onnxruntime/libonnxruntime.so.1.32.0"));
    candidates
}

/// Loads the runtime library (once per process) and returns the environment.
pub fn environment(
    setting: Option<&Path>,
) -> Result<&'static ort::environment::Environment, OnnxError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let candidates = library_candidates(setting);
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "no runtime library found (looked at {}); run scripts/fetch-onnxruntime.sh or set ORT_DYLIB_PATH",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        ort::init_from(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .with_name("mlserve")
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))
    });
    result
        .as_ref()
        .map_err(|message| OnnxError::Runtime(message.clone()))
}

/// The kind of values a graph input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// float32.
    Float,
    /// float64.
    Double,
    /// int64.
    Int64,
    /// Strings.
    Text,
}

/// One graph input.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInput {
    /// Its name in the graph.
    pub name: String,
    /// Its element type.
    pub kind: InputKind,
    /// Its column count (the second dimension), when fixed.
    pub width: Option<usize>,
}

/// The output that is read: a classifier's probabilities, or a regressor's values.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutput {
    /// The output's name.
    pub name: String,
    /// A ZipMap output (sequence of maps) rather than a tensor.
    pub zipmap: bool,
}

/// What a graph takes and gives, read from the graph itself.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSignature {
    /// Inputs, in graph order.
    pub inputs: Vec<GraphInput>,
    /// The output read: probabilities `[N, C]` (classification) or values `[N, 1]` (regression).
    pub output: ScoreOutput,
    /// What the graph does, told by its outputs: a ZipMap, or a label output beside a float
    /// `[N, C]` one, is a classifier; one float tensor `[N, 1]` or `[N]` alone, a regressor.
    pub task: Task,
}

fn input_kind(name: &str, dtype: &ValueType) -> Result<(InputKind, Option<usize>), String> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => {
            let kind = match ty {
                TensorElementType::Float32 => InputKind::Float,
                TensorElementType::Float64 => InputKind::Double,
                TensorElementType::Int64 => InputKind::Int64,
                TensorElementType::String => InputKind::Text,
                other => {
                    return Err(format!(
                        "input '{name}' has element type {other:?}, which is not supported"
                    ));
                }
            };
            let width = shape.get(1).and_then(|&d| usize::try_from(d).ok());
            Ok((kind, width))
        }
        other => Err(format!("input '{name}' is a {other:?}, not a tensor")),
    }
}

/// Reads the inputs and the output of a loaded session; `task`, when given, decides which
/// output is read (for a graph whose outputs do not tell).
fn signature(session: &Session, task: Option<Task>) -> Result<GraphSignature, String> {
    let inputs = session
        .inputs()
        .iter()
        .map(|outlet| {
            let (kind, width) = input_kind(outlet.name(), outlet.dtype())?;
            Ok(GraphInput {
                name: outlet.name().to_string(),
                kind,
                width,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (output, task) = match task {
        None => score_output(session.outputs())?,
        Some(task) => output_for(session.outputs(), task)?,
    };
    Ok(GraphSignature {
        inputs,
        output,
        task,
    })
}

/// The output to read and the task it tells. skl2onnx names a classifier's outputs
/// output_label and output_probability, and a regressor's one output variable. A ZipMap, or a
/// float `[N, C]` output beside a label (int64 or string) output, is a classifier; one float
/// output alone is a regressor when it is `[N, 1]` or `[N]`, a classifier's probabilities when
/// it is wider (softmax-only exports). Anything else does not tell, and `--task` must.
fn score_output(outlets: &[ort::value::Outlet]) -> Result<(ScoreOutput, Task), String> {
    let output = |outlet: &ort::value::Outlet, zipmap| ScoreOutput {
        name: outlet.name().to_string(),
        zipmap,
    };
    if let Some(zipmap) = outlets.iter().find(|outlet| is_zipmap(outlet)) {
        return Ok((output(zipmap, true), Task::Classification));
    }
    let floats: Vec<&ort::value::Outlet> =
        outlets.iter().filter(|o| float_rank(o).is_some()).collect();
    let has_label = outlets.iter().any(|outlet| {
        matches!(
            outlet.dtype(),
            ValueType::Tensor {
                ty: TensorElementType::Int64 | TensorElementType::String,
                ..
            }
        )
    });
    match floats.as_slice() {
        [only] if outlets.len() == 1 && is_value(only) => {
            Ok((output(only, false), Task::Regression))
        }
        [only] if outlets.len() == 1 && float_rank(only) == Some(2) => {
            Ok((output(only, false), Task::Classification))
        }
        _ if has_label => floats
            .iter()
            .find(|o| float_rank(o) == Some(2) && !is_value(o))
            .map(|o| (output(o, false), Task::Classification))
            .ok_or_else(|| undecided(outlets)),
        _ => Err(undecided(outlets)),
    }
}

/// Why a graph's outputs do not tell what it does, naming them.
fn undecided(outlets: &[ort::value::Outlet]) -> String {
    let names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
    format!(
        "the graph's outputs ({}) do not say what it does: import it with --task regression \
         if it predicts a number (read from its float [N, 1] output), or --task classification \
         (read from its float [N, C] or ZipMap output)",
        names.join(", ")
    )
}

fn is_zipmap(outlet: &ort::value::Outlet) -> bool {
    matches!(outlet.dtype(), ValueType::Sequence(inner) if matches!(**inner, ValueType::Map { .. }))
}

/// The rank of a float tensor output; `None` for any other output.
fn float_rank(outlet: &ort::value::Outlet) -> Option<usize> {
    match outlet.dtype() {
        ValueType::Tensor {
            ty: TensorElementType::Float32 | TensorElementType::Float64,
            shape,
            ..
        } => Some(shape.len()),
        _ => None,
    }
}

/// Whether a float output holds one value per row: `[N]` or `[N, 1]`.
fn is_value(outlet: &ort::value::Outlet) -> bool {
    match outlet.dtype() {
        ValueType::Tensor { shape, .. } if float_rank(outlet).is_some() => {
            shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)
        }
        _ => false,
    }
}

/// The output of a graph read as `task` says: a ZipMap or a float `[N, C]` tensor (C not 1)
/// for a classifier, the first float `[N, 1]` or `[N]` tensor for a regressor (never a graph
/// with a ZipMap, which is a classifier whatever else it has).
fn output_for(outlets: &[ort::value::Outlet], task: Task) -> Result<(ScoreOutput, Task), String> {
    let zipmap = outlets.iter().find(|outlet| is_zipmap(outlet));
    let found = match (task, zipmap) {
        (Task::Classification, Some(zipmap)) => Some((zipmap, true)),
        (Task::Classification, None) => outlets
            .iter()
            .find(|o| float_rank(o) == Some(2) && !is_value(o))
            .map(|o| (o, false)),
        (Task::Regression, Some(zipmap)) => {
            return Err(format!(
                "the graph's output '{}' is a ZipMap of class probabilities: it is a classifier",
                zipmap.name()
            ));
        }
        (Task::Regression, None) => outlets.iter().find(|o| is_value(o)).map(|o| (o, false)),
    };
    let (outlet, zipmap) = found.ok_or_else(|| match task {
        Task::Classification => {
            "the graph has no probability output (a [N, C] float tensor or a ZipMap)".to_string()
        }
        Task::Regression => {
            "the graph has no [N, 1] or [N] float output to read a number from".to_string()
        }
    })?;
    Ok((
        ScoreOutput {
            name: outlet.name().to_string(),
            zipmap,
        },
        task,
    ))
}

/// A loaded graph with a small pool of sessions (a session runs one request at a time).
pub struct OnnxModel {
    path: PathBuf,
    signature: GraphSignature,
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("signature", &self.signature)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// A column of input values for one graph input.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers (NaN for a missing value).
    Numbers(Vec<f64>),
    /// Strings.
    Texts(Vec<String>),
}

impl OnnxModel {
    /// Loads a graph file with `pool` sessions of one thread each (requests run in parallel
    /// across sessions, not inside one), its outputs read as [`OnnxModel::from_bytes`] says.
    pub fn load(
        path: &Path,
        library: Option<&Path>,
        pool: usize,
        task: Option<Task>,
    ) -> Result<OnnxModel, OnnxError> {
        let bytes = std::fs::read(path).map_err(|e| OnnxError::Graph {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        OnnxModel::from_bytes(path, &bytes, library, pool, task)
    }

    /// Loads a graph from its bytes (already read and checked); `path` names it in messages.
    /// `task`, when given, says how to read its outputs (see [`GraphSignature::task`]); else
    /// the outputs tell, or the load fails saying they do not.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        library: Option<&Path>,
        pool: usize,
        task: Option<Task>,
    ) -> Result<OnnxModel, OnnxError> {
        let environment = environment(library)?;
        let graph_error = |message: String| OnnxError::Graph {
            path: path.to_path_buf(),
            message,
        };
        let mut sessions = Vec::with_capacity(pool.max(1));
        for _ in 0..pool.max(1) {
            let session = Session::builder(environment)
                .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
                .and_then(|mut b| b.commit_from_memory(bytes))
                .map_err(|e| graph_error(e.to_string()))?;
            sessions.push(Mutex::new(session));
        }
        let signature = sessions
            .first()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
            .map(|s| signature(&s, task))
            .unwrap_or_else(|| Err("no session".to_string()))
            .map_err(graph_error)?;
        Ok(OnnxModel {
            path: path.to_path_buf(),
            signature,
            sessions,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A session no one is running, if there is one (so a request does not queue behind a big
    /// batch while another session idles); else the next in turn, waited for.
    fn free_session(&self) -> std::sync::MutexGuard<'_, Session> {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let count = self.sessions.len();
        for offset in 0..count {
            match self.sessions[(start + offset) % count].try_lock() {
                Ok(session) => return session,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.sessions[start % count]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// What the graph takes and gives.
    pub fn signature(&self) -> &GraphSignature {
        &self.signature
    }

    /// The scores of `rows` rows, given one column set per graph input (in graph order): for a
    /// `[N, F]` input, its F columns; for a `[N, 1]` input, one column. Each row's class
    /// probabilities (classification) or its one value (regression).
    pub fn scores(&self, rows: usize, inputs: &[Vec<Column>]) -> Result<Vec<Vec<f64>>, OnnxError> {
        let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (graph_input, columns) in self.signature.inputs.iter().zip(inputs) {
            let width = columns.len();
            let shape = vec![rows as i64, width as i64];
            let value: SessionInputValue<'_> = match graph_input.kind {
                InputKind::Text => {
                    let mut data = Vec::with_capacity(rows * width);
                    for row in 0..rows {
                        for column in columns {
                            match column {
                                Column::Texts(t) => data.push(t[row].clone()),
                                Column::Numbers(n) => data.push(n[row].to_string()),
                            }
                        }
                    }
                    Tensor::from_string_array((shape, data.as_slice()))
                        .map_err(|e| OnnxError::Run(e.to_string()))?
                        .into()
                }
                kind => {
                    let mut data = Vec::with_capacity(rows * width);
                    for row in 0..rows {
                        for column in columns {
                            match column {
                                Column::Numbers(n) => data.push(n[row]),
                                Column::Texts(_) => {
                                    return Err(OnnxError::Run(format!(
                                        "input '{}' takes numbers",
                                        graph_input.name
                                    )));
                                }
                            }
                        }
                    }
                    match kind {
                        InputKind::Float => {
                            let floats: Vec<f32> = data.iter().map(|&v| v as f32).collect();
                            Tensor::from_array((shape, floats))
                                .map_err(|e| OnnxError::Run(e.to_string()))?
                                .into()
                        }
                        InputKind::Double => Tensor::from_array((shape, data))
                            .map_err(|e| OnnxError::Run(e.to_string()))?
                            .into(),
                        _ => {
                            let ints: Vec<i64> = data.iter().map(|&v| v as i64).collect();
                            Tensor::from_array((shape, ints))
                                .map_err(|e| OnnxError::Run(e.to_string()))?
                                .into()
                        }
                    }
                }
            };
            values.push((Cow::Owned(graph_input.name.clone()), value));
        }
        let mut session = self.free_session();
        let outputs = session
            .run(values)
            .map_err(|e| OnnxError::Run(e.to_string()))?;
        let output = &outputs[self.signature.output.name.as_str()];
        let width = match self.signature.task {
            Task::Regression => Some(1),
            Task::Classification => None,
        };
        if self.signature.output.zipmap {
            zipmap_rows(output)
        } else if let Ok((shape, data)) = output.try_extract_tensor::<f32>() {
            Ok(tensor_rows(
                width.unwrap_or(shape.get(1).copied().unwrap_or(1) as usize),
                data.iter().map(|&v| f64::from(v)),
            ))
        } else {
            let (shape, data) = output
                .try_extract_tensor::<f64>()
                .map_err(|e| OnnxError::Run(e.to_string()))?;
            Ok(tensor_rows(
                width.unwrap_or(shape.get(1).copied().unwrap_or(1) as usize),
                data.iter().copied(),
            ))
        }
    }
}

fn tensor_rows(width: usize, data: impl Iterator<Item = f64>) -> Vec<Vec<f64>> {
    let width = width.max(1);
    let all: Vec<f64> = data.collect();
    all.chunks(width).map(<[f64]>::to_vec).collect()
}

/// A ZipMap output: one map from class (int64 or string) to probability per row, in the
/// order of the classes (keys sorted as the classifier's classes are).
fn zipmap_rows(output: &ort::value::DynValue) -> Result<Vec<Vec<f64>>, OnnxError> {
    let run = |e: ort::Error| OnnxError::Run(e.to_string());
    let maps = output
        .try_extract_sequence::<ort::value::DynMapValueType>()
        .map_err(run)?;
    let mut rows = Vec::with_capacity(maps.len());
    for map in &maps {
        if let Ok(by_int) = map.try_extract_map::<i64, f32>() {
            let mut pairs: Vec<(i64, f32)> = by_int.into_iter().collect();
            pairs.sort_by_key(|(k, _)| *k);
            rows.push(pairs.into_iter().map(|(_, v)| f64::from(v)).collect());
        } else {
            let by_text = map.try_extract_map::<String, f32>().map_err(run)?;
            let mut pairs: Vec<(String, f32)> = by_text.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            rows.push(pairs.into_iter().map(|(_, v)| f64::from(v)).collect());
        }
    }
    Ok(rows)
}
