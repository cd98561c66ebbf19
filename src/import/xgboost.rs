//! Reading an XGBoost model saved with `save_model` as JSON into mlserve's tree form (layout in
//! ../shared/notes/boosted-trees.md, section 1): the trees, which output each adds to, the
//! base margin through the objective's link, and the feature names and types.

use crate::model::boosted::{
    BoostedSource, BoostedTrees, CategoryCodes, LEAF, Link, MissingType, Node, Routing, Tree,
};
use serde_json::Value;

/// What an XGBoost file holds, read.
#[derive(Debug)]
pub struct XgboostModel {
    /// The ensemble.
    pub trees: BoostedTrees,
    /// Feature names (`f0`, `f1`, … when the file has none).
    pub feature_names: Vec<String>,
    /// Feature types as the file gives them (`float`, `int`, `i`, `q`, `c`), or empty.
    pub feature_types: Vec<String>,
}

/// Reads an XGBoost JSON document. `all_trees` uses every tree of an early-stopped model (as
/// `Booster.predict` does); otherwise trees up to its `best_iteration` (as the scikit-learn
/// wrapper's `predict_proba` / `predict` do).
///
/// Errors: a document that is not an XGBoost model, an objective or booster mlserve does not
/// evaluate (named), trees that are not well formed.
pub fn read(document: &Value, all_trees: bool) -> Result<XgboostModel, String> {
    let learner = document
        .get("learner")
        .ok_or("no \"learner\": not an XGBoost model saved with save_model")?;
    let parameters = &learner["learner_model_param"];
    let count = |key: &str| -> Result<usize, String> {
        text(&parameters[key])
            .parse::<usize>()
            .map_err(|_| format!("learner_model_param.{key} is not a count"))
    };
    let features = count("num_feature")?;
    let classes = count("num_class")?;
    let targets = count("num_target").unwrap_or(1);
    if targets > 1 {
        return Err(format!(
            "the model has {targets} targets; mlserve serves models that predict one number or classes"
        ));
    }
    let objective = text(&learner["objective"]["name"]).to_string();
    let base_scores = base_scores(text(&parameters["base_score"]))?;
    let (link, outputs) = link_of(&objective, classes)?;
    let base_margin = base_margins(&objective, &base_scores, outputs)?;
    let (booster, weights) = booster_of(&learner["gradient_booster"])?;
    let model = &booster["model"];
    let tree_values = model["trees"]
        .as_array()
        .ok_or("gradient_booster.model.trees is not a list")?;
    let tree_info: Vec<u32> = numbers(&model["tree_info"])?
        .iter()
        .map(|&v| v as u32)
        .collect();
    let indptr: Vec<usize> = numbers(&model["iteration_indptr"])?
        .iter()
        .map(|&v| v as usize)
        .collect();
    let iterations = indptr.len().saturating_sub(1);
    let best = learner["attributes"]["best_iteration"]
        .as_str()
        .and_then(|b| b.parse::<usize>().ok());
    let used = match best {
        Some(best) if !all_trees => (best + 1).min(iterations),
        _ => iterations,
    };
    let tree_count = indptr.get(used).copied().unwrap_or(tree_values.len());
    let mut trees = Vec::with_capacity(tree_count);
    for (index, tree) in tree_values.iter().take(tree_count).enumerate() {
        let weight = weights.as_ref().and_then(|w| w.get(index).copied());
        trees.push(read_tree(tree, weight).map_err(|error| format!("tree {index}: {error}"))?);
    }
    let ensemble = BoostedTrees {
        tree_output: tree_info.iter().take(trees.len()).copied().collect(),
        trees,
        base_margin,
        link,
        routing: Routing::Xgboost,
        features,
        average_over: None,
        source: BoostedSource {
            library: "xgboost".to_string(),
            objective,
            iterations: (used, iterations),
        },
        category_codes: Vec::new(),
        fast: None,
    };
    let feature_types = strings(&learner["feature_types"]);
    let ensemble = BoostedTrees {
        category_codes: category_names(model, features),
        ..ensemble
    };
    for (index, kind) in feature_types.iter().enumerate() {
        if kind == "c"
            && ensemble
                .category_codes
                .get(index)
                .is_none_or(Option::is_none)
        {
            return Err(format!(
                "feature {index} is categorical, but the file does not name its categories \
                 (saved before XGBoost 3.1): load it in XGBoost 3.1 or later and save it again"
            ));
        }
    }
    ensemble.check()?;
    Ok(XgboostModel {
        trees: ensemble,
        feature_names: strings(&learner["feature_names"]),
        feature_types,
    })
}

/// The booster's trees, and DART's per-tree weights.
fn booster_of(booster: &Value) -> Result<(&Value, Option<Vec<f64>>), String> {
    match text(&booster["name"]) {
        "gbtree" => Ok((booster, None)),
        "dart" => Ok((&booster["gbtree"], Some(numbers(&booster["weight_drop"])?))),
        other => Err(format!(
            "the booster is '{other}'; mlserve evaluates tree boosters (gbtree, dart), not linear ones"
        )),
    }
}

/// The link of an objective and its number of outputs.
fn link_of(objective: &str, classes: usize) -> Result<(Link, usize), String> {
    Ok(match objective {
        "binary:logistic" | "binary:logitraw" => (Link::BinarySigmoid { scale: 1.0 }, 1),
        "multi:softprob" | "multi:softmax" => (Link::Softmax, classes),
        "reg:squarederror" | "reg:absoluteerror" | "reg:pseudohubererror" => (Link::Identity, 1),
        "reg:logistic" => (Link::Logistic, 1),
        "count:poisson" | "reg:gamma" | "reg:tweedie" => (Link::Exp, 1),
        other => {
            return Err(format!(
                "objective '{other}' is not supported; mlserve serves binary:logistic, \
                 binary:logitraw, multi:softprob, multi:softmax, reg:squarederror, \
                 reg:absoluteerror, reg:pseudohubererror, reg:logistic, count:poisson, reg:gamma \
                 and reg:tweedie"
            ));
        }
    })
}

/// `base_score` as stored: `"[v1,…,vK]"` (3.1+) or a scalar (earlier), f32 each.
fn base_scores(stored: &str) -> Result<Vec<f32>, String> {
    stored
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .map_err(|_| format!("base_score '{stored}' is not a number"))
        })
        .collect()
}

/// The base margin of each output: `base_score` through the objective's link, computed in f32
/// as XGBoost does (a logit clipped to [1e-6, 1 − 1e-6], a natural log); multiclass base
/// scores are margins already. A scalar from before 3.1 is broadcast to every output.
fn base_margins(objective: &str, scores: &[f32], outputs: usize) -> Result<Vec<f64>, String> {
    let score = |k: usize| scores.get(k).or(scores.first()).copied().unwrap_or(0.5);
    if scores.len() != 1 && scores.len() != outputs {
        return Err(format!(
            "base_score has {} values for {outputs} outputs",
            scores.len()
        ));
    }
    Ok((0..outputs)
        .map(|k| {
            let p = score(k);
            let margin = match objective {
                "binary:logistic" | "reg:logistic" => {
                    let p = p.clamp(1e-6, 1.0 - 1e-6);
                    -(1.0f32 / p - 1.0).ln()
                }
                "count:poisson" | "reg:gamma" | "reg:tweedie" => p.ln(),
                _ => p,
            };
            f64::from(margin)
        })
        .collect())
}

fn read_tree(tree: &Value, weight: Option<f64>) -> Result<Tree, String> {
    if text(&tree["tree_param"]["size_leaf_vector"])
        .parse::<usize>()
        .unwrap_or(1)
        > 1
    {
        return Err(
            "multi-output trees (multi_strategy=multi_output_tree) are not supported".into(),
        );
    }
    let left = numbers(&tree["left_children"])?;
    let right = numbers(&tree["right_children"])?;
    let feature = numbers(&tree["split_indices"])?;
    let condition = numbers(&tree["split_conditions"])?;
    let default_left = numbers(&tree["default_left"])?;
    let split_type = numbers(&tree["split_type"]).unwrap_or_default();
    let n = left.len();
    if [
        right.len(),
        feature.len(),
        condition.len(),
        default_left.len(),
    ]
    .iter()
    .any(|&len| len != n)
    {
        return Err("its node arrays differ in length".to_string());
    }
    let (categories, words) = category_sets(tree, n)?;
    let child = |v: f64| -> Result<u32, String> {
        if v >= 0.0 && v < n as f64 {
            Ok(v as u32)
        } else {
            Err(format!("a child index {v} is out of bounds"))
        }
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        // Values are f32 in the file; read as f64 they keep their exact f32 value.
        let value = f64::from(condition[i] as f32);
        if left[i] < 0.0 {
            nodes.push(Node {
                feature: 0,
                value: weight.map_or(value, |w| f64::from((value as f32) * (w as f32))),
                left: LEAF,
                right: LEAF,
                default_left: true,
                missing: MissingType::NaN,
                categories: None,
            });
        } else {
            let categorical = split_type.get(i).is_some_and(|&t| t == 1.0);
            nodes.push(Node {
                feature: u32::try_from(feature[i] as i64)
                    .map_err(|_| "a feature index is negative")?,
                value,
                left: child(left[i])?,
                right: child(right[i])?,
                default_left: default_left[i] != 0.0,
                missing: MissingType::NaN,
                categories: if categorical {
                    Some(
                        categories.get(&i).copied().ok_or_else(|| {
                            format!("node {i} splits on categories but lists none")
                        })?,
                    )
                } else {
                    None
                },
            });
        }
    }
    Ok(Tree {
        nodes,
        categories: words,
    })
}

/// Per categorical split, the range of its bitset in the returned words.
type CategorySets = (std::collections::HashMap<usize, (u32, u32)>, Vec<u32>);

/// The category codes each categorical split sends right, as bitsets (`categories_nodes`,
/// `_segments` and `_sizes` index `categories`).
fn category_sets(tree: &Value, nodes: usize) -> Result<CategorySets, String> {
    let ids = numbers(&tree["categories_nodes"]).unwrap_or_default();
    let segments = numbers(&tree["categories_segments"]).unwrap_or_default();
    let sizes = numbers(&tree["categories_sizes"]).unwrap_or_default();
    let codes = numbers(&tree["categories"]).unwrap_or_default();
    if segments.len() != ids.len() || sizes.len() != ids.len() {
        return Err("its category lists differ in length".to_string());
    }
    let mut ranges = std::collections::HashMap::new();
    let mut words = Vec::new();
    for ((&id, &segment), &size) in ids.iter().zip(&segments).zip(&sizes) {
        let (start, end) = (segment as usize, segment as usize + size as usize);
        let listed = codes
            .get(start..end)
            .ok_or("a category segment is out of bounds")?;
        if id < 0.0 || id as usize >= nodes {
            return Err(format!("categorical node {id} is out of bounds"));
        }
        let highest = listed.iter().copied().fold(0.0f64, f64::max);
        if !(0.0..16_777_216.0).contains(&highest) || listed.iter().any(|&c| c < 0.0) {
            return Err(format!("a category code {highest} is out of range"));
        }
        let first = words.len();
        words.resize(first + highest as usize / 32 + 1, 0u32);
        for &code in listed {
            let code = code as usize;
            words[first + code / 32] |= 1 << (code % 32);
        }
        ranges.insert(id as usize, (first as u32, words.len() as u32));
    }
    Ok((ranges, words))
}

/// Each categorical feature's category names, coded by position (XGBoost 3.1+ keeps them in
/// `gradient_booster.model.cats`: per feature an arrow-like `offsets`/`values` string list, or
/// integer `values`).
fn category_names(model: &Value, features: usize) -> Vec<Option<CategoryCodes>> {
    let mut found = vec![None; features];
    let Some(encodings) = model["cats"]["enc"].as_array() else {
        return found;
    };
    for (feature, encoding) in encodings.iter().enumerate().take(features) {
        let values = numbers(&encoding["values"]).unwrap_or_default();
        if values.is_empty() {
            continue;
        }
        let names: Vec<String> = match numbers(&encoding["offsets"]) {
            Ok(offsets) if !offsets.is_empty() => {
                let bytes: Vec<u8> = values.iter().map(|&b| b as i64 as u8).collect();
                offsets
                    .windows(2)
                    .map(|w| {
                        let (a, b) = (w[0] as usize, w[1] as usize);
                        String::from_utf8_lossy(bytes.get(a..b).unwrap_or_default()).into_owned()
                    })
                    .collect()
            }
            _ => values.iter().map(|v| v.to_string()).collect(),
        };
        found[feature] = Some(
            names
                .into_iter()
                .enumerate()
                .map(|(code, name)| (name, code as f64))
                .collect(),
        );
    }
    found
}

/// A JSON string, or "" (XGBoost writes every scalar parameter as a string).
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A list of numbers (booleans as 0 and 1).
fn numbers(value: &Value) -> Result<Vec<f64>, String> {
    value
        .as_array()
        .ok_or_else(|| "a node array is missing".to_string())?
        .iter()
        .map(|v| match v {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| "a number is out of range".to_string()),
            Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            other => Err(format!("expected a number, got {other}")),
        })
        .collect()
}
