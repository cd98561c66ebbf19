//! Live quality of a model that predicts a number, kept as the prediction log's live counts
//! are (in `live.rs`): running sums of the (predicted, true) value pairs that feedback
//! gives, added bucket by bucket, from which RMSE, MAE, the mean error and R² follow without
//! re-reading the log. A correction takes the pair it replaces back.
//!
//! Every field is a sum, so buckets and corrections add up in any order and a bucket may hold
//! a negative count (a replica that only took back a pair another one counted). The true
//! values are summed relative to a center (the first true value a bucket saw), not as Σy and
//! Σy², whose difference loses every digit when the values are large and close together
//! (prices in the millions that differ by a few units); sums about different centers are
//! moved onto one exactly: Σ(y − b) = Σ(y − a) + n(a − b), and
//! Σ(y − b)² = Σ(y − a)² + 2(a − b)Σ(y − a) + n(a − b)².

use serde::{Deserialize, Serialize};

/// The (predicted, true) value pairs of one bucket, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Residuals {
    /// Pairs counted.
    pub n: i64,
    /// Σ (predicted − true).
    #[serde(rename = "se")]
    pub sum_error: f64,
    /// Σ (predicted − true)².
    #[serde(rename = "sse")]
    pub sum_squared_error: f64,
    /// Σ |predicted − true|.
    #[serde(rename = "sae")]
    pub sum_absolute_error: f64,
    /// The value the true values are summed about.
    #[serde(rename = "c")]
    pub center: f64,
    /// Σ (true − center).
    #[serde(rename = "st")]
    pub sum_true: f64,
    /// Σ (true − center)².
    #[serde(rename = "st2")]
    pub sum_squared_true: f64,
}

impl Residuals {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
            && self.sum_error == 0.0
            && self.sum_squared_error == 0.0
            && self.sum_absolute_error == 0.0
            && self.sum_true == 0.0
            && self.sum_squared_true == 0.0
    }

    /// Whether every sum is a finite number (a pair of huge values squares past f64's range).
    pub fn is_finite(&self) -> bool {
        [
            self.sum_error,
            self.sum_squared_error,
            self.sum_absolute_error,
            self.center,
            self.sum_true,
            self.sum_squared_true,
        ]
        .iter()
        .all(|v| v.is_finite())
    }

    /// The sums of one pair, counted `delta` times (-1 takes it back).
    pub fn of_pair(predicted: f64, actual: f64, delta: i64) -> Residuals {
        let error = predicted - actual;
        let times = delta as f64;
        Residuals {
            n: delta,
            sum_error: error * times,
            sum_squared_error: error * error * times,
            sum_absolute_error: error.abs() * times,
            center: actual,
            sum_true: 0.0,
            sum_squared_true: 0.0,
        }
    }

    /// Adds another bucket's sums (a negative count takes its pairs back).
    pub fn merge(&mut self, other: &Residuals) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = *other;
            return;
        }
        let shift = other.center - self.center;
        let n = other.n as f64;
        self.n += other.n;
        self.sum_error += other.sum_error;
        self.sum_squared_error += other.sum_squared_error;
        self.sum_absolute_error += other.sum_absolute_error;
        self.sum_squared_true +=
            other.sum_squared_true + 2.0 * shift * other.sum_true + n * shift * shift;
        self.sum_true += other.sum_true + n * shift;
    }

    /// Root mean squared error (scikit-learn's `root_mean_squared_error`).
    pub fn rmse(&self) -> Option<f64> {
        self.mean_of(self.sum_squared_error)
            .map(|mean| mean.max(0.0).sqrt())
    }

    /// Mean absolute error (`mean_absolute_error`).
    pub fn mae(&self) -> Option<f64> {
        self.mean_of(self.sum_absolute_error)
            .map(|mean| mean.max(0.0))
    }

    /// Mean of predicted − true: above 0, the model predicts too high on average.
    pub fn mean_error(&self) -> Option<f64> {
        self.mean_of(self.sum_error)
    }

    /// The coefficient of determination, 1 − SSE / SST, as scikit-learn's `r2_score` gives it:
    /// when the true values are all equal, 1 for perfect predictions and 0 otherwise. `None`
    /// under two pairs.
    pub fn r2(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let total = self.sum_squared_true - self.sum_true * self.sum_true / n;
        let errors = self.sum_squared_error.max(0.0);
        // A constant target: the centered sums cancel to what rounding leaves of them.
        Some(if total <= 1e-12 * self.sum_squared_true.abs() {
            if errors == 0.0 { 1.0 } else { 0.0 }
        } else {
            1.0 - errors / total
        })
    }

    fn mean_of(&self, sum: f64) -> Option<f64> {
        (self.n > 0).then(|| sum / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(f64, f64)]) -> Residuals {
        let mut sums = Residuals::default();
        for &(predicted, actual) in pairs {
            sums.merge(&Residuals::of_pair(predicted, actual, 1));
        }
        sums
    }

    /// The metrics computed directly, in two passes, as scikit-learn does.
    fn direct(pairs: &[(f64, f64)]) -> (f64, f64, f64, f64) {
        let n = pairs.len() as f64;
        let errors: Vec<f64> = pairs.iter().map(|(p, t)| p - t).collect();
        let sse: f64 = errors.iter().map(|e| e * e).sum();
        let mean = pairs.iter().map(|(_, t)| t).sum::<f64>() / n;
        let sst: f64 = pairs.iter().map(|(_, t)| (t - mean) * (t - mean)).sum();
        (
            (sse / n).sqrt(),
            errors.iter().map(|e| e.abs()).sum::<f64>() / n,
            errors.iter().sum::<f64>() / n,
            1.0 - sse / sst,
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    const PAIRS: [(f64, f64); 6] = [
        (151.0, 140.0),
        (75.5, 80.0),
        (141.0, 150.5),
        (206.0, 199.0),
        (135.0, 135.0),
        (97.0, 110.0),
    ];

    #[test]
    fn metrics_match_the_direct_computation() {
        let sums = of(&PAIRS);
        let (rmse, mae, mean_error, r2) = direct(&PAIRS);
        assert!(close(sums.rmse().unwrap(), rmse));
        assert!(close(sums.mae().unwrap(), mae));
        assert!(close(sums.mean_error().unwrap(), mean_error));
        assert!(close(sums.r2().unwrap(), r2));
    }

    #[test]
    fn buckets_merged_equal_one_bucket_and_a_pair_taken_back_is_gone() {
        let mut left = of(&PAIRS[..2]);
        let right = of(&PAIRS[2..]);
        left.merge(&right);
        let whole = of(&PAIRS);
        assert_eq!(left.n, whole.n);
        assert!(close(left.r2().unwrap(), whole.r2().unwrap()));
        assert!(close(left.rmse().unwrap(), whole.rmse().unwrap()));

        // A correction: the first pair's true value was wrong.
        let mut corrected = of(&PAIRS);
        corrected.merge(&Residuals::of_pair(151.0, 140.0, -1));
        corrected.merge(&Residuals::of_pair(151.0, 150.0, 1));
        let mut fixed = PAIRS;
        fixed[0] = (151.0, 150.0);
        let (rmse, mae, _, r2) = direct(&fixed);
        assert!(close(corrected.rmse().unwrap(), rmse));
        assert!(close(corrected.mae().unwrap(), mae));
        assert!(close(corrected.r2().unwrap(), r2));

        // A correction alone (another replica's bucket) counts nothing yet adds up.
        let mut elsewhere = Residuals::of_pair(151.0, 140.0, -1);
        elsewhere.merge(&Residuals::of_pair(151.0, 150.0, 1));
        assert_eq!(elsewhere.n, 0);
        assert!(!elsewhere.is_empty());
        assert_eq!(elsewhere.rmse(), None);
        let mut both = of(&PAIRS);
        both.merge(&elsewhere);
        assert!(close(both.rmse().unwrap(), rmse));
        assert!(close(both.r2().unwrap(), r2));

        // Everything taken back is nothing.
        let mut none = of(&PAIRS[..1]);
        none.merge(&Residuals::of_pair(151.0, 140.0, -1));
        assert_eq!(none.n, 0);
        assert_eq!(none.rmse(), None);
    }

    #[test]
    fn large_close_values_keep_their_digits() {
        // Prices around ten million that differ by a few units.
        let pairs: Vec<(f64, f64)> = (0..1000)
            .map(|i| {
                let actual = 1.0e7 + f64::from(i % 7);
                (actual + f64::from(i % 3) - 1.0, actual)
            })
            .collect();
        let sums = of(&pairs);
        let (_, _, _, r2) = direct(&pairs);
        assert!(
            (sums.r2().unwrap() - r2).abs() < 1e-9,
            "{:?} vs {r2}",
            sums.r2()
        );
    }

    #[test]
    fn sums_about_far_apart_centers_add_up() {
        let mut low = of(&[(1.0, 2.0), (3.0, 2.5)]);
        let high = of(&[(1.0e6, 1.0e6 + 1.0), (1.0e6 + 3.0, 1.0e6)]);
        low.merge(&high);
        let (rmse, _, _, r2) = direct(&[
            (1.0, 2.0),
            (3.0, 2.5),
            (1.0e6, 1.0e6 + 1.0),
            (1.0e6 + 3.0, 1.0e6),
        ]);
        assert!(close(low.rmse().unwrap(), rmse));
        assert!(close(low.r2().unwrap(), r2));
    }

    #[test]
    fn pairs_too_large_to_square_are_not_finite() {
        assert!(Residuals::of_pair(151.0, 140.0, 1).is_finite());
        assert!(!Residuals::of_pair(1e200, -1e200, 1).is_finite());
        assert!(!Residuals::of_pair(f64::NAN, 1.0, 1).is_finite());
    }

    #[test]
    fn a_constant_target_scores_as_scikit_learn_does() {
        assert_eq!(of(&[(3.0, 3.0), (3.0, 3.0)]).r2(), Some(1.0));
        assert_eq!(of(&[(2.0, 3.0), (3.0, 3.0)]).r2(), Some(0.0));
        assert_eq!(of(&[(2.0, 3.0)]).r2(), None);
    }

    #[test]
    fn the_sums_survive_the_stats_column() {
        let sums = of(&PAIRS);
        let text = serde_json::to_string(&sums).unwrap();
        let back: Residuals = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sums);
    }
}
