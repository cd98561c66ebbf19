//! Reading a LightGBM text model (`save_model` / `model_to_string`) into mlserve's tree form
//! (layout in ../shared/notes/boosted-trees.md, section 2): its header (classes, trees per
//! iteration, objective, feature names and infos), each `Tree=` block, and the
//! `pandas_categorical` line that names the categories of categorical features.

use crate::model::boosted::{
    BoostedSource, BoostedTrees, CategoryCodes, LEAF, Link, MissingType, Node, Routing, Tree,
};
use std::collections::HashMap;

/// Most features a model may read: more is a damaged file, refused before anything is
/// allocated for it.
pub const MAX_FEATURES: usize = 1_000_000;

/// What a LightGBM file holds, read.
#[derive(Debug)]
pub struct LightGbmModel {
    /// The ensemble.
    pub trees: BoostedTrees,
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Per feature, its categories when it is categorical: each category's text and the code
    /// the trees compare (its position in the training frame's list for pandas categories, the
    /// integer itself otherwise).
    pub categories: Vec<Option<CategoryCodes>>,
}

/// Reads a LightGBM text model.
///
/// Errors: a file that is not one, an objective mlserve does not evaluate (named), linear
/// trees, trees that are not well formed.
pub fn read(text: &str) -> Result<LightGbmModel, String> {
    let (header, rest) = text
        .split_once("\nTree=")
        .ok_or("no trees: not a LightGBM model saved with save_model")?;
    let fields = key_values(header);
    let get = |key: &str| {
        fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("the header has no {key}="))
    };
    let per_iteration: usize = get("num_tree_per_iteration")?
        .parse()
        .map_err(|_| "num_tree_per_iteration is not a count")?;
    let features: usize = get("max_feature_idx")?
        .parse::<usize>()
        .ok()
        .filter(|&f| f < MAX_FEATURES)
        .ok_or("max_feature_idx is not a count below a million")?
        + 1;
    let objective = fields
        .get("objective")
        .ok_or(
            "the file names no objective (a custom objective?): mlserve evaluates binary, \
                multiclass, multiclassova, regression (L2, L1, huber, quantile), poisson, gamma, \
                tweedie and cross_entropy",
        )?
        .to_string();
    let link = link_of(&objective, per_iteration)?;
    let feature_names: Vec<String> = get("feature_names")?
        .split(' ')
        .map(str::to_string)
        .collect();
    let infos: Vec<&str> = fields
        .get("feature_infos")
        .map(|i| i.split(' ').collect())
        .unwrap_or_default();
    let (trees_text, tail) = rest.split_once("end of trees").unwrap_or((rest, ""));
    let mut trees = Vec::new();
    for (index, block) in format!("Tree={trees_text}")
        .split("Tree=")
        .skip(1)
        .enumerate()
    {
        trees.push(read_tree(block).map_err(|error| format!("tree {index}: {error}"))?);
    }
    if trees.is_empty() || per_iteration == 0 || trees.len() % per_iteration != 0 {
        return Err(format!(
            "{} trees do not make whole iterations of {per_iteration}",
            trees.len()
        ));
    }
    let iterations = trees.len() / per_iteration;
    let average = header.lines().any(|line| line.trim() == "average_output");
    let ensemble = BoostedTrees {
        tree_output: (0..trees.len())
            .map(|t| (t % per_iteration) as u32)
            .collect(),
        trees,
        base_margin: vec![0.0; per_iteration],
        link,
        routing: Routing::LightGbm,
        features,
        average_over: average.then_some(iterations as u32),
        source: BoostedSource {
            library: "lightgbm".to_string(),
            objective,
            iterations: (iterations, iterations),
        },
        category_codes: Vec::new(),
        fast: None,
        fast64: None,
    };
    let categorical = categorical_features(tail, features)?;
    let categories = categories_of(&infos, features, &categorical, pandas_categorical(tail)?)?;
    let ensemble = BoostedTrees {
        category_codes: categories.clone(),
        ..ensemble
    };
    ensemble.check()?;
    Ok(LightGbmModel {
        trees: ensemble,
        feature_names,
        categories,
    })
}

/// `key=value` lines (and bare flags) of a block.
fn key_values(block: &str) -> HashMap<&str, &str> {
    block
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// The link of an objective line (`binary sigmoid:1`, `multiclass num_class:3`, …).
fn link_of(objective: &str, outputs: usize) -> Result<Link, String> {
    let mut words = objective.split(' ');
    let name = words.next().unwrap_or("");
    let parameters: HashMap<&str, &str> = words.filter_map(|w| w.split_once(':')).collect();
    let sigmoid = || -> Result<f64, String> {
        parameters.get("sigmoid").map_or(Ok(1.0), |s| {
            s.parse()
                .map_err(|_| format!("sigmoid:{s} is not a number"))
        })
    };
    if objective.split(' ').any(|word| word == "sqrt") {
        return Err(format!(
            "objective '{objective}' trains on the square root of the target (reg_sqrt), which \
             mlserve does not evaluate"
        ));
    }
    let link = match name {
        "binary" => Link::BinarySigmoid { scale: sigmoid()? },
        "multiclass" | "softmax" => Link::Softmax,
        "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Link::OneVsRest { scale: sigmoid()? },
        "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse"
            if parameters.contains_key("sqrt") || objective.contains(" sqrt") =>
        {
            return Err("objective 'regression sqrt' (reg_sqrt) is not supported".to_string());
        }
        "regression"
        | "regression_l2"
        | "l2"
        | "mean_squared_error"
        | "mse"
        | "regression_l1"
        | "l1"
        | "mean_absolute_error"
        | "mae"
        | "huber"
        | "quantile" => Link::Identity,
        "poisson" | "gamma" | "tweedie" => Link::Exp,
        "cross_entropy" | "xentropy" => Link::Logistic,
        other => {
            return Err(format!(
                "objective '{other}' is not supported; mlserve serves binary, multiclass, \
                 multiclassova, regression (L2, L1, huber, quantile), poisson, gamma, tweedie \
                 and cross_entropy"
            ));
        }
    };
    let expected = if matches!(link, Link::Softmax | Link::OneVsRest { .. }) {
        outputs.max(2)
    } else {
        1
    };
    if outputs != expected {
        return Err(format!(
            "objective '{name}' with {outputs} trees per iteration"
        ));
    }
    Ok(link)
}

fn read_tree(block: &str) -> Result<Tree, String> {
    let fields = key_values(block);
    if fields.get("is_linear").is_some_and(|v| *v != "0") {
        return Err(
            "it is a linear tree (linear_tree=true), which mlserve does not evaluate".into(),
        );
    }
    let leaves: usize = fields
        .get("num_leaves")
        .and_then(|v| v.parse().ok())
        .ok_or("no num_leaves")?;
    let values = |key: &str| -> Result<Vec<f64>, String> {
        match fields.get(key) {
            None | Some(&"") => Ok(Vec::new()),
            Some(text) => text
                .split(' ')
                .map(|v| v.parse::<f64>().map_err(|_| format!("{key} has '{v}'")))
                .collect(),
        }
    };
    let leaf_value = values("leaf_value")?;
    if leaf_value.len() != leaves || leaves == 0 {
        return Err(format!(
            "{} leaf values for {leaves} leaves",
            leaf_value.len()
        ));
    }
    let internal = leaves - 1;
    let feature = values("split_feature")?;
    let threshold = values("threshold")?;
    let decision = values("decision_type")?;
    let left = values("left_child")?;
    let right = values("right_child")?;
    if [
        feature.len(),
        threshold.len(),
        decision.len(),
        left.len(),
        right.len(),
    ]
    .iter()
    .any(|&n| n != internal)
    {
        return Err("its split arrays differ in length".to_string());
    }
    let boundaries = values("cat_boundaries")?;
    let words: Vec<u32> = values("cat_threshold")?.iter().map(|&w| w as u32).collect();
    // Internal node i at index i, leaf j at index internal + j.
    let child = |c: f64| -> Result<u32, String> {
        let index = if c >= 0.0 {
            c
        } else {
            internal as f64 + (-c - 1.0)
        };
        if index < (internal + leaves) as f64 {
            Ok(index as u32)
        } else {
            Err(format!("a child {c} is out of bounds"))
        }
    };
    let mut nodes = Vec::with_capacity(internal + leaves);
    for i in 0..internal {
        let kind = decision[i] as u32;
        let categories = if kind & 1 == 1 {
            let k = threshold[i] as usize;
            let (start, end) = (boundaries.get(k), boundaries.get(k + 1));
            match (start, end) {
                (Some(&s), Some(&e)) => Some((s as u32, e as u32)),
                _ => return Err(format!("node {i}'s category bitset {k} is missing")),
            }
        } else {
            None
        };
        if feature[i] < 0.0 {
            return Err(format!("node {i} splits on feature {}", feature[i]));
        }
        nodes.push(Node {
            feature: feature[i] as u32,
            value: threshold[i],
            left: child(left[i])?,
            right: child(right[i])?,
            default_left: kind & 2 == 2,
            missing: match (kind >> 2) & 3 {
                1 => MissingType::Zero,
                2 => MissingType::NaN,
                _ => MissingType::None,
            },
            categories,
        });
    }
    for value in leaf_value {
        nodes.push(Node {
            feature: 0,
            value,
            left: LEAF,
            right: LEAF,
            default_left: true,
            missing: MissingType::None,
            categories: None,
        });
    }
    // TreeSHAP's covers are LightGBM's row counts (not its hessian sums, `*_weight`).
    let internal_count = values("internal_count")?;
    let leaf_count = values("leaf_count")?;
    let covers = if internal_count.len() == internal && leaf_count.len() == leaves {
        internal_count.into_iter().chain(leaf_count).collect()
    } else {
        Vec::new()
    };
    Ok(Tree {
        nodes,
        categories: words,
        covers,
    })
}

/// The `pandas_categorical:` line: one list of category names per pandas category column.
fn pandas_categorical(tail: &str) -> Result<Option<Vec<Vec<serde_json::Value>>>, String> {
    let Some(line) = tail
        .lines()
        .find_map(|l| l.strip_prefix("pandas_categorical:"))
    else {
        return Ok(None);
    };
    serde_json::from_str(line.trim()).map_err(|e| format!("pandas_categorical is not JSON: {e}"))
}

/// Each feature's categories. The categorical features are those of the parameters'
/// `[categorical_feature: …]` line (a pandas category column LightGBM treated as numeric, an
/// ordered one, is not among them); the j-th takes the j-th pandas list (names, coded by
/// position), or, without pandas lists, the values its `feature_infos` entry lists (coded as
/// themselves). Lists that do not pair one to one with those features are refused: a wrong
/// pairing would name every category wrong.
fn categories_of(
    infos: &[&str],
    features: usize,
    categorical: &[usize],
    pandas: Option<Vec<Vec<serde_json::Value>>>,
) -> Result<Vec<Option<CategoryCodes>>, String> {
    let mut categories = vec![None; features];
    if let Some(lists) = &pandas
        && lists.len() != categorical.len()
    {
        return Err(format!(
            "the file lists {} pandas category columns for {} categorical features, so their \
             categories cannot be told apart (an ordered or constant category column?)",
            lists.len(),
            categorical.len()
        ));
    }
    for (j, &feature) in categorical.iter().enumerate() {
        let info = infos.get(feature).copied().unwrap_or("none");
        let listed: Vec<f64> = if info == "none" || info.starts_with('[') {
            Vec::new()
        } else {
            info.split(':')
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| format!("feature {feature}'s category '{v}' is not a number"))
                })
                .collect::<Result<_, _>>()?
        };
        let coded: CategoryCodes = match &pandas {
            Some(lists) => {
                let names = &lists[j];
                if let Some(code) = listed.iter().find(|&&c| c >= names.len() as f64) {
                    return Err(format!(
                        "feature {feature}'s code {code} has no name among its {} pandas categories",
                        names.len()
                    ));
                }
                names
                    .iter()
                    .enumerate()
                    .map(|(code, name)| {
                        let text = name
                            .as_str()
                            .map_or_else(|| name.to_string(), str::to_string);
                        (text, code as f64)
                    })
                    .collect()
            }
            None => listed
                .iter()
                .filter(|&&code| code >= 0.0)
                .map(|&code| (code.to_string(), code))
                .collect(),
        };
        if let Some(slot) = categories.get_mut(feature) {
            *slot = Some(coded);
        }
    }
    Ok(categories)
}

/// The parameters' `[categorical_feature: 2,3]` line: the categorical features' indices.
fn categorical_features(tail: &str, features: usize) -> Result<Vec<usize>, String> {
    let Some(line) = tail
        .lines()
        .find_map(|l| l.trim().strip_prefix("[categorical_feature:"))
    else {
        return Ok(Vec::new());
    };
    line.trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|&i| i < features)
                .ok_or_else(|| format!("categorical_feature '{v}' is not a feature of the model"))
        })
        .collect()
}
