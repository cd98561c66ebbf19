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
    if features >= super::lightgbm::MAX_FEATURES {
        return Err(format!(
            "num_feature {features} is not a count below a million"
        ));
    }
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
    let (booster, weights) = booster_of(&learner["gradient_booster"])?;
    let model = &booster["model"];
    let tree_values = model["trees"]
        .as_array()
        .ok_or("gradient_booster.model.trees is not a list")?;
    // Every output has trees: more outputs than trees is a damaged file, refused before a
    // margin is allocated for each.
    if outputs > tree_values.len().max(1) {
        return Err(format!("{outputs} classes for {} trees", tree_values.len()));
    }
    let base_margin = base_margins(&objective, &base_scores, outputs)?;
    if weights
        .as_ref()
        .is_some_and(|w| w.len() != tree_values.len())
    {
        return Err("DART's weight_drop does not give one weight per tree".to_string());
    }
    let tree_info: Vec<u32> = numbers(&model["tree_info"])?
        .iter()
        .map(|&v| v as u32)
        .collect();
    let indptr = iteration_starts(model, tree_values.len(), outputs)?;
    let iterations = indptr.len().saturating_sub(1);
    let best = learner["attributes"]["best_iteration"]
        .as_str()
        .and_then(|b| b.parse::<usize>().ok());
    let used = match best {
        Some(best) if !all_trees => best.saturating_add(1).min(iterations),
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
        fast64: None,
    };
    let feature_types = strings(&learner["feature_types"]);
    let ensemble = BoostedTrees {
        category_codes: category_names(model, features),
        ..ensemble
    };
    ensemble.check()?;
    Ok(XgboostModel {
        trees: ensemble,
        feature_names: strings(&learner["feature_names"]),
        feature_types,
    })
}

/// The first tree of each iteration, and the tree count after the last (`iteration_indptr`;
/// files from before XGBoost 2.0 have none: then each iteration holds `num_parallel_tree`
/// trees per output). Checked to rise from 0 to the number of trees.
fn iteration_starts(model: &Value, trees: usize, outputs: usize) -> Result<Vec<usize>, String> {
    let starts: Vec<usize> = match numbers(&model["iteration_indptr"]) {
        Ok(values) => values
            .iter()
            .map(|&v| {
                if v >= 0.0 && v <= trees as f64 {
                    v as usize
                } else {
                    usize::MAX
                }
            })
            .collect(),
        Err(_) => {
            let parallel = text(&model["gbtree_model_param"]["num_parallel_tree"])
                .parse::<usize>()
                .unwrap_or(1)
                .max(1);
            let per = parallel.saturating_mul(outputs.max(1));
            (0..=trees / per).map(|i| i * per).collect()
        }
    };
    let rising = starts.windows(2).all(|w| w[0] <= w[1]);
    if starts.first() != Some(&0) || starts.last() != Some(&trees) || !rising {
        return Err("iteration_indptr does not count the trees from 0 to their number".into());
    }
    Ok(starts)
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
    // The hessian sums are f32 in the file, as XGBoost's TreeSHAP reads them.
    let covers = numbers(&tree["sum_hessian"])
        .ok()
        .filter(|covers| covers.len() == n)
        .map(|covers| covers.iter().map(|&c| f64::from(c as f32)).collect())
        .unwrap_or_default();
    Ok(Tree {
        nodes,
        categories: words,
        covers,
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
        if segment < 0.0 || size < 0.0 {
            return Err("a category segment is negative".to_string());
        }
        let start = segment as usize;
        let end = start.saturating_add(size as usize);
        let listed = codes
            .get(start..end)
            .ok_or("a category segment is out of bounds")?;
        if id < 0.0 || id as usize >= nodes {
            return Err(format!("categorical node {id} is out of bounds"));
        }
        let highest = listed.iter().copied().fold(0.0f64, f64::max);
        // A bitset of up to 2^16 codes (8 KiB) per split; more categories than that are not
        // a tabular feature, and a damaged file could make each split allocate megabytes.
        if !(0.0..65_536.0).contains(&highest) || listed.iter().any(|&c| c < 0.0) {
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
