//! Gaussian naive Bayes: per-class means and variances, closed form.

use crate::model::native::Estimator;
use crate::train::preprocess::Matrix;

/// Fits class means, variances and priors. As scikit-learn, every variance is widened by
/// `var_smoothing` times the largest column variance, which keeps constant columns usable.
pub fn fit(x: &Matrix, y: &[usize], n_classes: usize, var_smoothing: f64) -> Estimator {
    let width = x.cols;
    let mut counts = vec![0.0; n_classes];
    let mut theta = vec![0.0; n_classes * width];
    for (row, &class) in y.iter().enumerate() {
        counts[class] += 1.0;
        for (sum, value) in theta[class * width..(class + 1) * width]
            .iter_mut()
            .zip(x.row(row))
        {
            *sum += value;
        }
    }
    for class in 0..n_classes {
        theta[class * width..(class + 1) * width]
            .iter_mut()
            .for_each(|sum| *sum /= f64::max(counts[class], 1.0));
    }
    let mut variance = vec![0.0; n_classes * width];
    for (row, &class) in y.iter().enumerate() {
        let means = &theta[class * width..(class + 1) * width];
        for ((sum, value), mean) in variance[class * width..(class + 1) * width]
            .iter_mut()
            .zip(x.row(row))
            .zip(means)
        {
            *sum += (value - mean) * (value - mean);
        }
    }
    let epsilon = var_smoothing * largest_column_variance(x).max(f64::MIN_POSITIVE);
    for class in 0..n_classes {
        variance[class * width..(class + 1) * width]
            .iter_mut()
            .for_each(|sum| *sum = *sum / f64::max(counts[class], 1.0) + epsilon);
    }
    let total = y.len() as f64;
    let log_prior = counts.iter().map(|count| (count / total).ln()).collect();
    Estimator::GaussianNaiveBayes {
        theta,
        variance,
        log_prior,
    }
}

fn largest_column_variance(x: &Matrix) -> f64 {
    let n = x.rows.max(1) as f64;
    (0..x.cols)
        .map(|col| {
            let mean = (0..x.rows).map(|row| x.row(row)[col]).sum::<f64>() / n;
            (0..x.rows)
                .map(|row| (x.row(row)[col] - mean).powi(2))
                .sum::<f64>()
                / n
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_by_hand() {
        let x = Matrix {
            rows: 4,
            cols: 1,
            data: vec![1.0, 3.0, 10.0, 10.0],
        };
        let Estimator::GaussianNaiveBayes {
            theta,
            variance,
            log_prior,
        } = fit(&x, &[0, 0, 1, 1], 2, 0.0)
        else {
            panic!("naive Bayes expected")
        };
        assert_eq!(theta, [2.0, 10.0]);
        assert_eq!(variance, [1.0, 0.0]);
        assert_eq!(log_prior, [0.5f64.ln(), 0.5f64.ln()]);
    }
}
