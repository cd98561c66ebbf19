//! Evaluation metrics, defined as scikit-learn defines them.

use crate::model::argmax;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Of the rows predicted as this class, the share that are.
    pub precision: f64,
    /// Of the rows of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: u64,
}

/// The full evaluation of a model on held-out rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Unweighted mean of per-class precision.
    pub precision_macro: f64,
    /// Unweighted mean of per-class recall.
    pub recall_macro: f64,
    /// Unweighted mean of per-class F1.
    pub f1_macro: f64,
    /// Binary: ROC AUC of the second class. Multiclass: one-vs-rest macro average.
    /// `None` when a class is absent from the rows, where it is undefined.
    pub roc_auc: Option<f64>,
    /// Mean negative log-likelihood of the true class.
    pub log_loss: f64,
    /// Class labels, the order of the confusion matrix.
    pub labels: Vec<String>,
    /// `confusion_matrix[true][predicted]` row counts.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Per-class metrics by label.
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// ROC curve points `[false positive rate, true positive rate]`: the second class for a
    /// binary model, each class against the rest otherwise.
    pub roc_curve: BTreeMap<String, Vec<[f64; 2]>>,
}

impl Evaluation {
    /// The headline metrics a manifest keeps.
    pub fn summary(&self) -> crate::model::MetricsSummary {
        crate::model::MetricsSummary {
            accuracy: self.accuracy,
            precision_macro: self.precision_macro,
            recall_macro: self.recall_macro,
            f1_macro: self.f1_macro,
            roc_auc: self.roc_auc,
            log_loss: self.log_loss,
        }
    }
}

/// Evaluates predicted probabilities against the true classes.
pub fn evaluate(truth: &[usize], probabilities: &[Vec<f64>], labels: &[String]) -> Evaluation {
    let n_classes = labels.len();
    let predicted: Vec<usize> = probabilities.iter().map(|p| argmax(p)).collect();
    let confusion = confusion_matrix(truth, &predicted, n_classes);
    let per_class: Vec<ClassMetrics> = (0..n_classes)
        .map(|class| class_metrics(&confusion, class))
        .collect();
    // scikit-learn's macro averages run over the classes that occur in the truth or the
    // predictions: a class neither has (a test file of one class) does not count as 0.
    let occurs: Vec<bool> = (0..n_classes)
        .map(|class| {
            confusion[class].iter().sum::<u64>() > 0 || confusion.iter().any(|row| row[class] > 0)
        })
        .collect();
    let occurring = occurs.iter().filter(|&&o| o).count().max(1) as f64;
    let macro_mean = |f: fn(&ClassMetrics) -> f64| {
        per_class
            .iter()
            .zip(&occurs)
            .filter(|(_, occurs)| **occurs)
            .map(|(m, _)| f(m))
            .sum::<f64>()
            / occurring
    };
    let correct: u64 = (0..n_classes).map(|class| confusion[class][class]).sum();
    let curve_classes: Vec<usize> = if n_classes == 2 {
        vec![1]
    } else {
        (0..n_classes).collect()
    };
    let one_vs_rest = |class: usize| -> (Vec<bool>, Vec<f64>) {
        (
            truth.iter().map(|&t| t == class).collect(),
            probabilities.iter().map(|p| p[class]).collect(),
        )
    };
    let roc_auc = curve_classes
        .iter()
        .map(|&class| {
            let (positive, scores) = one_vs_rest(class);
            roc_auc(&positive, &scores)
        })
        .collect::<Option<Vec<f64>>>()
        .map(|aucs| aucs.iter().sum::<f64>() / aucs.len() as f64);
    let roc_curve = curve_classes
        .iter()
        .map(|&class| {
            let (positive, scores) = one_vs_rest(class);
            (labels[class].clone(), roc_curve(&positive, &scores))
        })
        .collect();
    Evaluation {
        accuracy: correct as f64 / truth.len().max(1) as f64,
        precision_macro: macro_mean(|m| m.precision),
        recall_macro: macro_mean(|m| m.recall),
        f1_macro: macro_mean(|m| m.f1),
        roc_auc,
        log_loss: log_loss(truth, probabilities),
        labels: labels.to_vec(),
        confusion_matrix: confusion,
        per_class: labels.iter().cloned().zip(per_class).collect(),
        roc_curve,
    }
}

/// `matrix[true][predicted]` counts.
pub fn confusion_matrix(truth: &[usize], predicted: &[usize], n_classes: usize) -> Vec<Vec<u64>> {
    let mut matrix = vec![vec![0; n_classes]; n_classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        matrix[t][p] += 1;
    }
    matrix
}

/// A ratio that is 0 when its denominator is, as scikit-learn's `zero_division=0`.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Precision, recall, F1 and support of one class from a confusion matrix.
pub fn class_metrics(confusion: &[Vec<u64>], class: usize) -> ClassMetrics {
    let true_positive = confusion[class][class];
    let predicted_as_class: u64 = confusion.iter().map(|row| row[class]).sum();
    let support: u64 = confusion[class].iter().sum();
    let precision = ratio(true_positive, predicted_as_class);
    let recall = ratio(true_positive, support);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    ClassMetrics {
        precision,
        recall,
        f1,
        support,
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (the Mann–Whitney statistic). `None` without both classes.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let n_positive = positive.iter().filter(|&&p| p).count();
    let n_negative = positive.len() - n_positive;
    if n_positive == 0 || n_negative == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the 1-based ranks of the positives, tied scores sharing their average rank.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + end) as f64 / 2.0 + 1.0;
        let positives_here = order[start..=end].iter().filter(|&&i| positive[i]).count();
        positive_rank_sum += average_rank * positives_here as f64;
        start = end + 1;
    }
    let (p, n) = (n_positive as f64, n_negative as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// ROC curve points from (0, 0) to (1, 1), one per distinct score threshold.
pub fn roc_curve(positive: &[bool], scores: &[f64]) -> Vec<[f64; 2]> {
    let n_positive = positive.iter().filter(|&&p| p).count().max(1) as f64;
    let n_negative = (positive.len() - positive.iter().filter(|&&p| p).count()).max(1) as f64;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![[0.0, 0.0]];
    let (mut true_positives, mut false_positives) = (0.0, 0.0);
    for (position, &i) in order.iter().enumerate() {
        if positive[i] {
            true_positives += 1.0;
        } else {
            false_positives += 1.0;
        }
        let last_of_threshold = order
            .get(position + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_threshold {
            points.push([false_positives / n_negative, true_positives / n_positive]);
        }
    }
    points
}

/// Mean negative log-probability of the true class, probabilities clipped to
/// [ε, 1 − ε] with ε the f64 machine epsilon, as scikit-learn does.
pub fn log_loss(truth: &[usize], probabilities: &[Vec<f64>]) -> f64 {
    let eps = f64::EPSILON;
    let total: f64 = truth
        .iter()
        .zip(probabilities)
        .map(|(&t, p)| -p[t].clamp(eps, 1.0 - eps).ln())
        .sum();
    total / truth.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn confusion_matrix_counts_true_by_predicted() {
        let m = confusion_matrix(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
    }

    #[test]
    fn precision_recall_f1_by_hand() {
        // truth:     0 0 0 1 1
        // predicted: 0 0 1 1 0
        // class 0: tp 2, fp 1, fn 1 → p = 2/3, r = 2/3; class 1: tp 1, fp 1, fn 1 → p = r = 1/2
        let labels = vec!["a".to_string(), "b".to_string()];
        let probs: Vec<Vec<f64>> = [0.9, 0.8, 0.4, 0.3, 0.6]
            .iter()
            .map(|&p0| vec![p0, 1.0 - p0])
            .collect();
        let e = evaluate(&[0, 0, 0, 1, 1], &probs, &labels);
        assert!(close(e.accuracy, 0.6));
        assert!(close(e.per_class["a"].precision, 2.0 / 3.0));
        assert!(close(e.per_class["a"].recall, 2.0 / 3.0));
        assert!(close(e.per_class["b"].f1, 0.5));
        assert_eq!(e.per_class["b"].support, 2);
        assert!(close(e.precision_macro, (2.0 / 3.0 + 0.5) / 2.0));
        assert!(close(e.f1_macro, (2.0 / 3.0 + 0.5) / 2.0));
        // Scores of class b: positives 0.7, 0.4; negatives 0.1, 0.2, 0.6 → pairs won: 3 + 2 = 5 of 6.
        assert!(close(e.roc_auc.unwrap(), 5.0 / 6.0));
        let expected_loss =
            -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.7f64.ln() + 0.4f64.ln()) / 5.0;
        assert!(close(e.log_loss, expected_loss));
    }

    #[test]
    fn zero_division_gives_zero() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let e = evaluate(&[0, 0], &[vec![0.9, 0.1], vec![0.8, 0.2]], &labels);
        assert_eq!(e.per_class["b"].precision, 0.0);
        assert_eq!(e.per_class["b"].f1, 0.0);
        assert_eq!(e.roc_auc, None);
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        assert!(close(roc_auc(&[true, false], &[0.5, 0.5]).unwrap(), 0.5));
        assert!(close(
            roc_auc(&[true, true, false], &[0.9, 0.2, 0.5]).unwrap(),
            0.5
        ));
        assert!(close(roc_auc(&[false, true], &[0.1, 0.9]).unwrap(), 1.0));
    }

    #[test]
    fn multiclass_auc_is_one_vs_rest_macro() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let probs = vec![
            vec![0.8, 0.1, 0.1],
            vec![0.1, 0.2, 0.7],
            vec![0.3, 0.3, 0.4],
        ];
        // a: positive 0.8 vs 0.1, 0.3 → 1. b: positive 0.2 vs 0.1, 0.3 → 1/2. c: positive 0.4 vs 0.1, 0.7 → 1/2.
        let e = evaluate(&[0, 1, 2], &probs, &labels);
        assert!(close(e.roc_auc.unwrap(), 2.0 / 3.0));
        assert_eq!(e.roc_curve.len(), 3);
    }

    #[test]
    fn macro_averages_leave_out_classes_that_never_occur() {
        // scikit-learn: f1_score([0, 0], [0, 0], average="macro") == 1.0 whatever the labels.
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let probabilities = vec![vec![0.8, 0.1, 0.1], vec![0.7, 0.2, 0.1]];
        let evaluation = evaluate(&[0, 0], &probabilities, &labels);
        assert_eq!(evaluation.f1_macro, 1.0);
        // A class that is predicted but never true counts (its precision is 0).
        let evaluation = evaluate(
            &[0, 0],
            &[vec![0.8, 0.2, 0.0], vec![0.1, 0.9, 0.0]],
            &labels,
        );
        assert!(
            close(evaluation.precision_macro, 0.5),
            "{}",
            evaluation.precision_macro
        );
    }

    #[test]
    fn log_loss_clips_zero_probability() {
        let loss = log_loss(&[0], &[vec![0.0, 1.0]]);
        assert!(close(loss, -f64::EPSILON.ln()));
    }

    #[test]
    fn roc_curve_walks_thresholds() {
        let curve = roc_curve(&[true, false, true, false], &[0.9, 0.8, 0.8, 0.1]);
        assert_eq!(curve, vec![[0.0, 0.0], [0.0, 0.5], [0.5, 1.0], [1.0, 1.0]]);
    }
}
