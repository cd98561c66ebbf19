//! Gradient histograms and the best split of a node, as in LightGBM and scikit-learn's
//! `HistGradientBoosting` (Ke et al. 2017, "LightGBM", section 2; the gain is XGBoost's,
//! Chen and Guestrin 2016, eq. 7, without its γ): per feature and bin, the sums of the rows'
//! gradients and hessians; a split's gain is `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`.
//!
//! Missing values are tried on both sides and the better kept; when a node saw none, they
//! follow the larger child (scikit-learn's rule). A categorical feature's categories are
//! ordered by `G/(H + smoothing)` and split into a prefix and the rest, as LightGBM does.

use super::bins::{BinnedRows, FeatureBins, MISSING_BIN};

/// LightGBM's `cat_smooth`: keeps a rare category's ratio near zero when ordering.
const CATEGORY_SMOOTHING: f64 = 10.0;

/// Sums over some rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Number of rows.
    pub n: u32,
}

impl Sums {
    fn add(&mut self, other: Sums) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    fn minus(self, other: Sums) -> Sums {
        Sums {
            g: self.g - other.g,
            h: self.h - other.h,
            n: self.n - other.n,
        }
    }

    fn score(self, l2: f64) -> f64 {
        self.g * self.g / (self.h + l2)
    }
}

/// Where each feature's bins sit in a histogram: feature `f` has its present bins and then
/// its missing bin.
#[derive(Debug, Clone)]
pub struct Layout {
    offsets: Vec<usize>,
    bins: Vec<usize>,
    size: usize,
}

impl Layout {
    /// The layout for these features.
    pub fn new(features: &[FeatureBins]) -> Layout {
        let bins: Vec<usize> = features.iter().map(FeatureBins::bins).collect();
        let mut offsets = Vec::with_capacity(bins.len());
        let mut size = 0;
        for &count in &bins {
            offsets.push(size);
            size += count + 1;
        }
        Layout {
            offsets,
            bins,
            size,
        }
    }

    fn slot(&self, feature: usize, bin: u8) -> usize {
        if bin == MISSING_BIN {
            self.offsets[feature] + self.bins[feature]
        } else {
            self.offsets[feature] + bin as usize
        }
    }

    /// The histogram of `rows` (indices into `binned`). Each row's gradient and hessian are
    /// gathered once, so the per-feature passes read them in order.
    pub fn histogram(&self, binned: &BinnedRows, rows: &[u32], g: &[f64], h: &[f64]) -> Vec<Sums> {
        let mut histogram = vec![Sums::default(); self.size];
        let ordered: Vec<(f64, f64)> = rows
            .iter()
            .map(|&row| (g[row as usize], h[row as usize]))
            .collect();
        let contiguous = rows.windows(2).all(|pair| pair[1] == pair[0] + 1);
        for feature in 0..self.bins.len() {
            let column = binned.column(feature);
            let slots =
                &mut histogram[self.offsets[feature]..=self.offsets[feature] + self.bins[feature]];
            let missing = self.bins[feature];
            let mut add = |bin: u8, (g, h): (f64, f64)| {
                let slot = if bin == MISSING_BIN {
                    missing
                } else {
                    bin as usize
                };
                let sums = &mut slots[slot];
                sums.g += g;
                sums.h += h;
                sums.n += 1;
            };
            if contiguous && !rows.is_empty() {
                // The root's rows in order: the column is read as a slice.
                let start = rows[0] as usize;
                for (&bin, &gh) in column[start..start + rows.len()].iter().zip(&ordered) {
                    add(bin, gh);
                }
            } else {
                for (&row, &gh) in rows.iter().zip(&ordered) {
                    add(column[row as usize], gh);
                }
            }
        }
        histogram
    }

    /// The histogram of a parent's other child: the parent's minus this one's.
    pub fn subtract(parent: &[Sums], child: &[Sums]) -> Vec<Sums> {
        parent.iter().zip(child).map(|(p, c)| p.minus(*c)).collect()
    }

    /// The sums over every row of a histogram (read from its first feature).
    pub fn total(&self, histogram: &[Sums]) -> Sums {
        let mut total = Sums::default();
        if let Some(&bins) = self.bins.first() {
            histogram[..=bins].iter().for_each(|s| total.add(*s));
        }
        total
    }
}

/// What a split sends left.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Bins up to and including this one go left (`x < threshold[bin]`).
    UpTo(u8),
    /// These category codes go right, the others left.
    CategoriesRight(Vec<u8>),
    /// Missing values go left, every present value right (scikit-learn's split at the last
    /// bin with missing values on the left).
    MissingOnly,
}

/// The best split of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Gain over not splitting.
    pub gain: f64,
    /// The feature.
    pub feature: usize,
    /// What goes left.
    pub rule: Rule,
    /// Whether missing values go left.
    pub missing_left: bool,
}

impl Split {
    /// Whether a row in `bin` goes left.
    pub fn goes_left(&self, bin: u8) -> bool {
        if bin == MISSING_BIN {
            return self.missing_left;
        }
        match &self.rule {
            Rule::UpTo(last) => bin <= *last,
            Rule::CategoriesRight(codes) => !codes.contains(&bin),
            Rule::MissingOnly => false,
        }
    }
}

/// What a split must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fewest rows per child.
    pub min_samples_leaf: u32,
    /// L2 penalty on leaf values.
    pub l2: f64,
}

/// scikit-learn's `min_hessian_to_split`.
const MIN_HESSIAN: f64 = 1e-3;

impl Limits {
    fn allows(&self, left: Sums, right: Sums) -> bool {
        left.n >= self.min_samples_leaf
            && right.n >= self.min_samples_leaf
            && left.h >= MIN_HESSIAN
            && right.h >= MIN_HESSIAN
    }

    fn gain(&self, left: Sums, right: Sums, total: Sums) -> f64 {
        left.score(self.l2) + right.score(self.l2) - total.score(self.l2)
    }
}

/// The best split over every feature of a node with histogram `histogram`, if any has a
/// positive gain within `limits`.
pub fn best_split(
    layout: &Layout,
    histogram: &[Sums],
    features: &[FeatureBins],
    limits: Limits,
) -> Option<Split> {
    let total = layout.total(histogram);
    let mut best: Option<Split> = None;
    for (feature, bins) in features.iter().enumerate() {
        let start = layout.offsets[feature];
        let present = &histogram[start..start + layout.bins[feature]];
        let missing = histogram[layout.slot(feature, MISSING_BIN)];
        let candidate = match bins {
            FeatureBins::Numeric { .. } => numeric_split(present, missing, total, limits),
            FeatureBins::Categorical { .. } => categorical_split(present, missing, total, limits),
        };
        let candidate = better(candidate, missing_only_split(missing, total, limits));
        if let Some((gain, rule, missing_left)) = candidate
            && best.as_ref().is_none_or(|b| gain > b.gain)
        {
            best = Some(Split {
                gain,
                feature,
                rule,
                missing_left,
            });
        }
    }
    best
}

type Candidate = (f64, Rule, bool);

fn better(a: Option<Candidate>, b: Option<Candidate>) -> Option<Candidate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The rows with a missing value against every other: the one split a feature with a single
/// present value has, and one no threshold between present values gives.
fn missing_only_split(missing: Sums, total: Sums, limits: Limits) -> Option<Candidate> {
    let right = total.minus(missing);
    if missing.n == 0 || !limits.allows(missing, right) {
        return None;
    }
    let gain = limits.gain(missing, right, total);
    (gain > 0.0).then_some((gain, Rule::MissingOnly, true))
}

/// Missing values on each side when the node has some; otherwise decided after, by size.
fn missing_sides(missing: Sums) -> &'static [bool] {
    if missing.n > 0 {
        &[false, true]
    } else {
        &[false]
    }
}

fn numeric_split(
    present: &[Sums],
    missing: Sums,
    total: Sums,
    limits: Limits,
) -> Option<Candidate> {
    let mut best: Option<Candidate> = None;
    for &missing_left in missing_sides(missing) {
        let mut left = if missing_left {
            missing
        } else {
            Sums::default()
        };
        for (bin, sums) in present
            .iter()
            .enumerate()
            .take(present.len().saturating_sub(1))
        {
            left.add(*sums);
            let right = total.minus(left);
            if !limits.allows(left, right) {
                continue;
            }
            let gain = limits.gain(left, right, total);
            if gain > 0.0 && best.as_ref().is_none_or(|b| gain > b.0) {
                let missing_left = missing_left || (missing.n == 0 && left.n > right.n);
                best = Some((gain, Rule::UpTo(bin as u8), missing_left));
            }
        }
    }
    best
}

fn categorical_split(
    present: &[Sums],
    missing: Sums,
    total: Sums,
    limits: Limits,
) -> Option<Candidate> {
    let mut order: Vec<(u8, Sums)> = present
        .iter()
        .enumerate()
        .filter(|(_, s)| s.n > 0)
        .map(|(code, s)| (code as u8, *s))
        .collect();
    if order.len() < 2 {
        return None;
    }
    let ratio = |s: &Sums| s.g / (s.h + CATEGORY_SMOOTHING);
    order.sort_by(|a, b| ratio(&a.1).total_cmp(&ratio(&b.1)).then(a.0.cmp(&b.0)));
    let mut best: Option<(f64, usize, bool)> = None;
    for &missing_left in missing_sides(missing) {
        // The prefix goes left with the missing values or right without them.
        let mut prefix = Sums::default();
        for (count, (_, sums)) in order.iter().enumerate().take(order.len() - 1) {
            prefix.add(*sums);
            let left = if missing_left {
                let mut left = prefix;
                left.add(missing);
                left
            } else {
                prefix
            };
            let right = total.minus(left);
            if !limits.allows(left, right) {
                continue;
            }
            let gain = limits.gain(left, right, total);
            if gain > 0.0 && best.is_none_or(|b| gain > b.0) {
                best = Some((gain, count + 1, missing_left));
            }
        }
    }
    let (gain, prefix, missing_left) = best?;
    // The rest of the order goes right; unseen categories go left with the prefix.
    let right: Vec<u8> = order[prefix..].iter().map(|(code, _)| *code).collect();
    let missing_left = missing_left || missing.n == 0;
    Some((gain, Rule::CategoriesRight(right), missing_left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(g: f64, n: u32) -> Sums {
        Sums {
            g,
            h: f64::from(n),
            n,
        }
    }

    const LIMITS: Limits = Limits {
        min_samples_leaf: 1,
        l2: 0.0,
    };

    #[test]
    fn numeric_split_separates_opposite_gradients() {
        let present = [sums(-4.0, 4), sums(-4.0, 4), sums(4.0, 4), sums(4.0, 4)];
        let total = sums(0.0, 16);
        let (gain, rule, _) = numeric_split(&present, Sums::default(), total, LIMITS).unwrap();
        assert_eq!(rule, Rule::UpTo(1));
        assert!((gain - (64.0 / 8.0 + 64.0 / 8.0)).abs() < 1e-12);
    }

    #[test]
    fn missing_values_join_the_side_they_resemble() {
        let present = [sums(-4.0, 4), sums(4.0, 4)];
        let missing = sums(5.0, 4);
        let total = sums(5.0, 12);
        let (_, rule, missing_left) = numeric_split(&present, missing, total, LIMITS).unwrap();
        assert_eq!(rule, Rule::UpTo(0));
        assert!(!missing_left);
    }

    #[test]
    fn categories_are_grouped_by_their_gradients() {
        let present = [sums(5.0, 5), sums(-5.0, 5), sums(5.0, 5), sums(-5.0, 5)];
        let (_, rule, _) =
            categorical_split(&present, Sums::default(), sums(0.0, 20), LIMITS).unwrap();
        assert_eq!(rule, Rule::CategoriesRight(vec![0, 2]));
    }

    #[test]
    fn missing_values_are_split_off_from_a_single_present_value() {
        let present = [sums(-4.0, 4)];
        let missing = sums(4.0, 4);
        let layout = Layout::new(&[FeatureBins::Numeric {
            thresholds: Vec::new(),
        }]);
        let histogram = [present[0], missing];
        let split = best_split(
            &layout,
            &histogram,
            &[FeatureBins::Numeric {
                thresholds: Vec::new(),
            }],
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            (split.rule.clone(), split.missing_left),
            (Rule::MissingOnly, true)
        );
        assert!(split.goes_left(MISSING_BIN) && !split.goes_left(0));
    }

    #[test]
    fn children_below_the_minimum_are_not_made() {
        let present = [sums(-4.0, 1), sums(4.0, 10)];
        let limits = Limits {
            min_samples_leaf: 2,
            l2: 0.0,
        };
        assert!(numeric_split(&present, Sums::default(), sums(0.0, 11), limits).is_none());
    }
}
