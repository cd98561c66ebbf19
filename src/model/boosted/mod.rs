//! Gradient-boosted trees, imported from XGBoost and LightGBM files (and, later, trained
//! natively): one compact form and one evaluator for them all. A row's margin per output is its
//! base margin plus the sum of its trees' leaves; the objective's link turns margins into class
//! probabilities or a value, exactly as the library's scikit-learn wrapper answers
//! (`predict_proba` / `predict`). The file layouts, routing rules and links are in
//! ../shared/notes/boosted-trees.md.

pub mod fast;
pub mod fast64;
pub mod shap;
pub mod shap_tables;
pub mod stored;
pub mod tree;

use serde::{Deserialize, Serialize};
pub use tree::{LEAF, MissingType, Node, Routing, Tree};

/// [`BoostedSource::library`] of trees trained by mlserve itself.
pub const NATIVE_LIBRARY: &str = "mlserve";

/// A categorical feature's categories: each one's name and the code the trees compare.
pub type CategoryCodes = Vec<(String, f64)>;

/// How margins become an answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Link {
    /// Two classes: `p = 1 / (1 + exp(−scale·m))` for the second, from one margin.
    BinarySigmoid {
        /// LightGBM's `sigmoid:` parameter; 1 for XGBoost.
        scale: f64,
    },
    /// Several classes: the softmax of one margin per class.
    Softmax,
    /// Several classes, each a sigmoid of its own margin (LightGBM `multiclassova`),
    /// normalised to sum to 1.
    OneVsRest {
        /// LightGBM's `sigmoid:` parameter.
        scale: f64,
    },
    /// A number: the margin itself.
    Identity,
    /// A number: `exp(m)` (Poisson, gamma, Tweedie).
    Exp,
    /// A number in [0, 1]: `1 / (1 + exp(−m))` (XGBoost `reg:logistic`, LightGBM
    /// `cross_entropy`).
    Logistic,
}

impl Link {
    /// Whether the answer is class probabilities.
    pub fn classifies(self) -> bool {
        matches!(
            self,
            Link::BinarySigmoid { .. } | Link::Softmax | Link::OneVsRest { .. }
        )
    }
}

/// Where a model came from and how its trees are read: said in its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedSource {
    /// `xgboost` or `lightgbm`.
    pub library: String,
    /// The objective as the file names it.
    pub objective: String,
    /// Iterations (boosting rounds) used, and how many the file holds.
    pub iterations: (usize, usize),
}

/// A boosted tree ensemble ready to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTrees {
    /// The trees, in the file's order.
    pub trees: Vec<Tree>,
    /// The output (class or target) each tree adds to.
    pub tree_output: Vec<u32>,
    /// The base margin of each output.
    pub base_margin: Vec<f64>,
    /// How margins become the answer.
    pub link: Link,
    /// Whose routing rules the trees follow.
    pub routing: Routing,
    /// Input columns (the model's features, in order).
    pub features: usize,
    /// LightGBM random-forest mode: the summed trees are divided by this many iterations.
    pub average_over: Option<u32>,
    /// Where the trees came from.
    pub source: BoostedSource,
    /// Per feature, its categories when it is categorical: each category's name and the code
    /// the trees compare. Empty when no feature is.
    #[serde(default)]
    pub category_codes: Vec<Option<CategoryCodes>>,
    /// XGBoost's trees compiled for speed (built by [`BoostedTrees::compiled`]; not stored,
    /// `None` until then).
    #[serde(skip)]
    pub fast: Option<Vec<Option<fast::FastTree>>>,
    /// LightGBM's trees compiled for speed (built by [`BoostedTrees::compiled`]; not stored).
    #[serde(skip)]
    pub fast64: Option<Vec<Option<fast64::FastTree64>>>,
}

impl BoostedTrees {
    /// The same model with its trees compiled for speed (XGBoost's by `fast.rs`, LightGBM's by
    /// `fast64.rs`); call once the trees are checked.
    pub fn compiled(mut self) -> BoostedTrees {
        match self.routing {
            Routing::Xgboost => {
                self.fast = Some(self.trees.iter().map(fast::FastTree::compile).collect());
            }
            Routing::LightGbm => {
                self.fast64 = Some(self.trees.iter().map(fast64::FastTree64::compile).collect());
            }
        }
        self
    }

    /// A validated row as the trees read it: one number per feature, NaN for missing, a
    /// category as its code (the validator lets only the model's categories through; any
    /// other would be missing).
    pub fn row(&self, values: &[super::FeatureValue]) -> Vec<f64> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| match value {
                super::FeatureValue::Number(x) => *x,
                super::FeatureValue::Category(name) => self
                    .category_codes
                    .get(index)
                    .and_then(Option::as_ref)
                    .and_then(|codes| codes.iter().find(|(n, _)| n == name))
                    .map_or(f64::NAN, |(_, code)| *code),
                super::FeatureValue::Missing | super::FeatureValue::Text(_) => f64::NAN,
            })
            .collect()
    }

    /// Whether margins are summed in f64: trees trained by mlserve (f32 leaves, but a base
    /// margin that may be a large target mean). XGBoost's files sum in f32, as XGBoost does.
    /// Read from the source, not stored, so model files keep the layout they had.
    pub fn sum_in_f64(&self) -> bool {
        self.source.library == NATIVE_LIBRARY
    }

    /// Whether leaves add up in f32: XGBoost's files, as XGBoost accumulates. Asked once per
    /// row or batch, not per leaf.
    fn sums_in_f32(&self) -> bool {
        self.routing == Routing::Xgboost && !self.sum_in_f64()
    }

    /// The base margins an XGBoost file's sum starts from (rounded to f32, as XGBoost keeps
    /// them), or LightGBM's zeros (its base is inside its first tree, its average added last).
    fn starting_margins(&self) -> Vec<f64> {
        match self.routing {
            Routing::Xgboost if self.sum_in_f64() => self.base_margin.clone(),
            Routing::Xgboost => self
                .base_margin
                .iter()
                .map(|&b| f64::from(b as f32))
                .collect(),
            Routing::LightGbm => vec![0.0; self.base_margin.len()],
        }
    }

    /// The margin of each output for one row (features by column, NaN for missing). XGBoost
    /// sums in f32, the base margin first and then the trees in file order; LightGBM in f64,
    /// its base inside its first tree. Each is followed exactly: an f64 sum of XGBoost's trees
    /// is 1e-6 off after an exp link.
    pub fn margins(&self, row: &[f64]) -> Vec<f64> {
        let in_f32 = self.sums_in_f32();
        let mut margins = self.starting_margins();
        let row32: Vec<f32> = match self.fast {
            Some(_) => row.iter().map(|&x| x as f32).collect(),
            None => Vec::new(),
        };
        for (index, (tree, &output)) in self.trees.iter().zip(&self.tree_output).enumerate() {
            let fast = self
                .fast
                .as_ref()
                .and_then(|f| f.get(index))
                .and_then(Option::as_ref);
            let fast64 = self
                .fast64
                .as_ref()
                .and_then(|f| f.get(index))
                .and_then(Option::as_ref);
            let leaf = match (fast, fast64) {
                (Some(fast), _) => f64::from(fast.leaf_value(&row32)),
                (None, Some(fast64)) => fast64.leaf_value(row),
                (None, None) => tree.leaf_value(row, self.routing),
            };
            if let Some(margin) = margins.get_mut(output as usize) {
                add_leaf(margin, leaf, in_f32);
            }
        }
        if self.routing == Routing::LightGbm {
            let divisor = self.average_over.map_or(1.0, f64::from);
            for (margin, base) in margins.iter_mut().zip(&self.base_margin) {
                *margin = *margin / divisor + base;
            }
        }
        margins
    }

    /// The answer for one row: class probabilities (in class order) for a classifier, one
    /// value for a regressor. XGBoost's links are computed in f32, as XGBoost does.
    pub fn predict(&self, row: &[f64]) -> Vec<f64> {
        if let Some(fast) = self.fast.as_ref().filter(|f| f.iter().all(Option::is_some)) {
            let row32: Vec<f32> = row.iter().map(|&x| x as f32).collect();
            let in_f32 = self.sums_in_f32();
            let mut margins = self.starting_margins();
            // Four walks side by side; the sums still go in file order, as XGBoost adds.
            let mut outputs = self.tree_output.iter();
            let mut add = |value: f32, margins: &mut [f64]| {
                if let Some(margin) = outputs.next().and_then(|&o| margins.get_mut(o as usize)) {
                    add_leaf(margin, f64::from(value), in_f32);
                }
            };
            let mut groups = fast.chunks_exact(4);
            for group in groups.by_ref() {
                if let [Some(a), Some(b), Some(c), Some(d)] = group {
                    for value in fast::leaf_values([a, b, c, d], &row32) {
                        add(value, &mut margins);
                    }
                }
            }
            for tree in groups.remainder().iter().flatten() {
                add(tree.leaf_value(&row32), &mut margins);
            }
            return self.answer(&margins);
        }
        self.answer(&self.margins(row))
    }

    /// The link applied to margins: in f32 for XGBoost's files, as XGBoost does; in f64
    /// otherwise.
    fn answer(&self, margins: &[f64]) -> Vec<f64> {
        if self.sums_in_f32() {
            let margins: Vec<f32> = margins.iter().map(|&m| m as f32).collect();
            return predict_f32(self.link, &margins);
        }
        match self.link {
            Link::BinarySigmoid { scale } => {
                let p = sigmoid(scale * margins.first().copied().unwrap_or(0.0));
                vec![1.0 - p, p]
            }
            Link::Softmax => softmax(margins),
            Link::OneVsRest { scale } => {
                let each: Vec<f64> = margins.iter().map(|m| sigmoid(scale * m)).collect();
                let total: f64 = each.iter().sum();
                each.iter().map(|p| p / total).collect()
            }
            Link::Identity => margins.to_vec(),
            Link::Exp => margins.iter().map(|m| m.exp()).collect(),
            Link::Logistic => margins.iter().map(|&m| sigmoid(m)).collect(),
        }
    }

    /// The answers for many rows, as [`BoostedTrees::predict`] gives each: compiled XGBoost
    /// trees are walked tree by tree over blocks of rows, so a tree's nodes stay in cache
    /// while the block goes through it (the sums keep XGBoost's order per row).
    pub fn predict_rows(&self, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
        // A few rows (a single-row request) are quicker walked four trees at a time each.
        const FEW: usize = 8;
        match &self.fast {
            Some(fast) if rows.len() >= FEW && fast.iter().all(Option::is_some) => {
                self.fast_rows(rows, fast)
            }
            _ => rows.iter().map(|row| self.predict(row)).collect(),
        }
    }

    fn fast_rows(&self, rows: &[Vec<f64>], fast: &[Option<fast::FastTree>]) -> Vec<Vec<f64>> {
        // The summing mode is decided once, not at every leaf of every row.
        if !self.sums_in_f32() {
            self.fast_rows_summing::<false>(rows, fast)
        } else {
            self.fast_rows_summing::<true>(rows, fast)
        }
    }

    /// [`BoostedTrees::fast_rows`], adding leaves in f32 (XGBoost's files) or f64.
    fn fast_rows_summing<const F32: bool>(
        &self,
        rows: &[Vec<f64>],
        fast: &[Option<fast::FastTree>],
    ) -> Vec<Vec<f64>> {
        const BLOCK: usize = 64;
        let add = |margin: &mut f64, leaf: f32| add_leaf(margin, f64::from(leaf), F32);
        let (features, outputs) = (self.features, self.base_margin.len());
        let starting = self.starting_margins();
        let mut answers = Vec::with_capacity(rows.len());
        let mut row32 = vec![f32::NAN; BLOCK * features];
        let mut margins = vec![0f64; BLOCK * outputs];
        for block in rows.chunks(BLOCK) {
            for (r, row) in block.iter().enumerate() {
                let cells = &mut row32[r * features..(r + 1) * features];
                for (cell, x) in cells
                    .iter_mut()
                    .zip(row.iter().chain(std::iter::repeat(&f64::NAN)))
                {
                    *cell = *x as f32;
                }
                margins[r * outputs..(r + 1) * outputs].copy_from_slice(&starting);
            }
            for (tree, &output) in fast.iter().flatten().zip(&self.tree_output) {
                let output = output as usize;
                // Eight rows at a time through the tree: their walks overlap in the processor.
                let mut r = 0;
                while r + 8 <= block.len() {
                    let values: [f32; 8] = tree
                        .leaf_values_of_rows(&row32[r * features..(r + 8) * features], features);
                    for (k, value) in values.iter().enumerate() {
                        add(&mut margins[(r + k) * outputs + output], *value);
                    }
                    r += 8;
                }
                for r in r..block.len() {
                    let value = tree.leaf_value(&row32[r * features..(r + 1) * features]);
                    add(&mut margins[r * outputs + output], value);
                }
            }
            for r in 0..block.len() {
                answers.push(self.answer(&margins[r * outputs..(r + 1) * outputs]));
            }
        }
        answers
    }

    /// Whether every tree has its node covers, which explanations need (files without them, and
    /// models stored before covers were kept, have none).
    pub fn explainable(&self) -> bool {
        self.trees.iter().all(tree::Tree::covers_fit)
    }

    /// Path-dependent TreeSHAP contributions of one row (features by column, NaN for missing),
    /// in the raw margin, as XGBoost's `pred_contribs` and LightGBM's `pred_contrib` give them:
    /// per output, one contribution per feature and the base value last (`[outputs][F + 1]`);
    /// each output's values add up to its margin (before LightGBM's random-forest averaging,
    /// as LightGBM's own). `None` when a tree has no covers. Computed in f64: XGBoost computes
    /// in f32, so its values can differ in the seventh significant digit.
    pub fn contributions(&self, row: &[f64]) -> Option<Vec<Vec<f64>>> {
        if !self.explainable() {
            return None;
        }
        let bases = self.expected_margins();
        let mut phi = vec![0.0; bases.len() * self.features];
        self.add_contributions(None, row, &mut phi);
        let rows = phi.chunks(self.features.max(1)).zip(bases);
        Some(
            rows.map(|(values, base)| {
                let mut out = values.to_vec();
                out.resize(self.features, 0.0);
                out.push(base);
                out
            })
            .collect(),
        )
    }

    /// Each output's base value: its base margin plus every tree's expected value over the
    /// training data (the same for every row). Meaningful only when [`Self::explainable`].
    pub fn expected_margins(&self) -> Vec<f64> {
        let mut bases = self.base_margin.clone();
        for (tree, &output) in self.trees.iter().zip(&self.tree_output) {
            if let Some(base) = bases.get_mut(output as usize) {
                let mut expected = [0.0];
                self.explained(tree).add_expected_values(&mut expected);
                *base += expected[0];
            }
        }
        bases
    }

    /// Adds every tree's TreeSHAP contributions for `row` to `phi`, laid out
    /// `[outputs][features]` (see [`Self::contributions`]): from `tables` where a tree has
    /// them (built by [`Self::shap_tables`]), else by Algorithm 2. Meaningful only when
    /// [`Self::explainable`].
    pub fn add_contributions(
        &self,
        tables: Option<&shap_tables::EnsembleTables>,
        row: &[f64],
        phi: &mut [f64],
    ) {
        let features = self.features;
        let mut hot = Vec::new();
        for (index, (tree, &output)) in self.trees.iter().zip(&self.tree_output).enumerate() {
            let start = output as usize * features;
            let Some(slots) = phi.get_mut(start..start + features) else {
                continue;
            };
            let explained = self.explained(tree);
            match tables {
                Some(tables) => tables.add_contributions(index, &explained, row, slots, &mut hot),
                None => explained.add_contributions(row, slots),
            }
        }
    }

    /// The TreeSHAP tables of the trees, for [`Self::add_contributions`].
    pub fn shap_tables(&self) -> shap_tables::EnsembleTables {
        shap_tables::EnsembleTables::build(self.trees.iter().map(|tree| self.explained(tree)))
    }

    fn explained<'a>(&self, tree: &'a Tree) -> shap::Explained<'a> {
        shap::Explained {
            tree,
            covers: &tree.covers,
            rule: shap::SplitRule::Library(self.routing),
            values: shap::NodeValues::InNodes,
        }
    }

    /// Checks every tree and the shape of the ensemble, so evaluation never indexes out of
    /// bounds (see [`Tree::check`]).
    pub fn check(&self) -> Result<(), String> {
        if self.trees.len() != self.tree_output.len() {
            return Err("every tree needs its output".to_string());
        }
        let outputs = self.base_margin.len();
        let expected = match self.link {
            Link::BinarySigmoid { .. } | Link::Identity | Link::Exp | Link::Logistic => 1,
            Link::Softmax | Link::OneVsRest { .. } => outputs.max(2),
        };
        if outputs != expected {
            return Err(format!(
                "{outputs} outputs, but the objective gives {expected}"
            ));
        }
        if let Some(&bad) = self.tree_output.iter().find(|&&o| o as usize >= outputs) {
            return Err(format!("a tree adds to output {bad} of {outputs}"));
        }
        for (index, tree) in self.trees.iter().enumerate() {
            tree.check(self.features)
                .map_err(|error| format!("tree {index}: {error}"))?;
        }
        Ok(())
    }

    /// Checks the trees (see [`BoostedTrees::check`]) and that they fit `manifest`: one
    /// feature per input column, a label per class, the manifest's task.
    pub fn check_against(&self, manifest: &super::Manifest) -> Result<(), String> {
        self.check()?;
        if self.features != manifest.features.len() {
            return Err(format!(
                "the trees read {} features, the manifest has {}",
                self.features,
                manifest.features.len()
            ));
        }
        let task = if self.link.classifies() {
            super::Task::Classification
        } else {
            super::Task::Regression
        };
        if task != manifest.task || self.classes() != manifest.labels.len() {
            return Err(format!(
                "the trees are a {} with {} classes, the manifest says {} with {} labels",
                task.name(),
                self.classes(),
                manifest.task.name(),
                manifest.labels.len()
            ));
        }
        Ok(())
    }

    /// How many classes the answer has (0 for a regressor).
    pub fn classes(&self) -> usize {
        match self.link {
            Link::BinarySigmoid { .. } => 2,
            Link::Softmax | Link::OneVsRest { .. } => self.base_margin.len(),
            Link::Identity | Link::Exp | Link::Logistic => 0,
        }
    }
}

/// Adds a tree's leaf to a margin: in f32 for XGBoost's files (the margin stays an f32 value,
/// as XGBoost accumulates), in f64 otherwise.
#[inline]
fn add_leaf(margin: &mut f64, leaf: f64, in_f32: bool) {
    *margin = if in_f32 {
        f64::from(*margin as f32 + leaf as f32)
    } else {
        *margin + leaf
    };
}

/// XGBoost's links in f32 (`1 / (1 + expf(−m))`, `expf`, an f32 softmax).
fn predict_f32(link: Link, margins: &[f32]) -> Vec<f64> {
    let sigmoid = |m: f32| 1.0f32 / (1.0 + (-m).exp());
    let answer: Vec<f32> = match link {
        Link::BinarySigmoid { .. } => {
            let p = sigmoid(margins.first().copied().unwrap_or(0.0));
            return vec![f64::from(1.0 - p), f64::from(p)];
        }
        Link::Softmax | Link::OneVsRest { .. } => {
            let top = margins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = margins.iter().map(|m| (m - top).exp()).collect();
            let total: f32 = exps.iter().sum();
            exps.iter().map(|e| e / total).collect()
        }
        Link::Identity => margins.to_vec(),
        Link::Exp => margins.iter().map(|m| m.exp()).collect(),
        Link::Logistic => margins.iter().map(|&m| sigmoid(m)).collect(),
    };
    answer.into_iter().map(f64::from).collect()
}

fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

fn softmax(margins: &[f64]) -> Vec<f64> {
    let top = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = margins.iter().map(|m| (m - top).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}
