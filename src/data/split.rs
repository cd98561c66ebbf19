//! Train/test splits and k-fold partitions, reproducible for a seed: stratified by class for
//! classification, plain shuffles for regression.

use super::DataError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Row indices of each class, each list shuffled by `rng`.
fn shuffled_rows_by_class(target: &[usize], n_classes: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); n_classes];
    for (row, &class) in target.iter().enumerate() {
        by_class[class].push(row);
    }
    for rows in &mut by_class {
        rows.shuffle(rng);
    }
    by_class
}

fn check_test_size(test_size: f64) -> Result<(), DataError> {
    if test_size > 0.0 && test_size < 1.0 {
        Ok(())
    } else {
        Err(DataError::Split(format!(
            "--test-size must be between 0 and 1 (exclusive), got {test_size}"
        )))
    }
}

/// Splits rows into (train, test) keeping each class's share in both, as scikit-learn's
/// `train_test_split(stratify=y)` does. Both lists come back sorted.
pub fn stratified_split(
    target: &[usize],
    n_classes: usize,
    test_size: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    check_test_size(test_size)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for rows in shuffled_rows_by_class(target, n_classes, &mut rng) {
        let n_test = ((rows.len() as f64) * test_size).round() as usize;
        // Every class keeps at least one training row, or the model could never learn it.
        let n_test = n_test.min(rows.len().saturating_sub(1));
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    if test.is_empty() {
        return Err(DataError::Split(format!(
            "a test size of {test_size} leaves no rows to evaluate on ({} rows in all)",
            target.len()
        )));
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// One fold of k-fold cross-validation: (training rows, validation rows).
pub type Fold = (Vec<usize>, Vec<usize>);

/// Partitions `rows` (indices into `target`) into `k` stratified folds and returns
/// (train, validation) index lists for each fold.
pub fn stratified_kfold(
    rows: &[usize],
    target: &[usize],
    n_classes: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<Fold>, DataError> {
    if k < 2 {
        return Err(DataError::Split(format!(
            "--cv needs at least 2 folds, got {k}"
        )));
    }
    if rows.len() < k {
        return Err(DataError::Split(format!(
            "--cv {k} asks for more folds than the {} training rows",
            rows.len()
        )));
    }
    let fold_target: Vec<usize> = rows.iter().map(|&row| target[row]).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0; rows.len()];
    // Dealing each class's shuffled rows round-robin, continuing where the previous class
    // stopped, keeps fold sizes within one row of each other.
    let mut next_fold = 0;
    for class_rows in shuffled_rows_by_class(&fold_target, n_classes, &mut rng) {
        for position in class_rows {
            fold_of[position] = next_fold;
            next_fold = (next_fold + 1) % k;
        }
    }
    Ok((0..k)
        .map(|fold| {
            let (validation, train): (Vec<usize>, Vec<usize>) =
                (0..rows.len()).partition(|&position| fold_of[position] == fold);
            (
                train.into_iter().map(|position| rows[position]).collect(),
                validation
                    .into_iter()
                    .map(|position| rows[position])
                    .collect(),
            )
        })
        .collect())
}

/// Splits rows `0..n_rows` into (train, test) at random, holding out `ceil(test_size ×
/// n_rows)` rows as scikit-learn's `train_test_split(shuffle=True)` does (for a target that is
/// a number). Both lists come back sorted.
pub fn shuffled_split(
    n_rows: usize,
    test_size: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    check_test_size(test_size)?;
    let n_test = ((n_rows as f64) * test_size).ceil() as usize;
    if n_test >= n_rows {
        return Err(DataError::Split(format!(
            "a test size of {test_size} leaves no rows to train on ({n_rows} rows in all)"
        )));
    }
    let mut rows: Vec<usize> = (0..n_rows).collect();
    rows.shuffle(&mut StdRng::seed_from_u64(seed));
    let (mut test, mut train) = (rows[..n_test].to_vec(), rows[n_test..].to_vec());
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Partitions `rows` into `k` folds at random (scikit-learn's `KFold(shuffle=True)`), and
/// returns (train, validation) index lists for each fold.
pub fn kfold(rows: &[usize], k: usize, seed: u64) -> Result<Vec<Fold>, DataError> {
    let one_class = vec![0; rows.iter().max().map_or(0, |&row| row + 1)];
    stratified_kfold(rows, &one_class, 1, k, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Vec<usize> {
        (0..100).map(|i| usize::from(i >= 70)).collect()
    }

    #[test]
    fn split_keeps_class_shares_and_covers_every_row_once() {
        let y = target();
        let (train, test) = stratified_split(&y, 2, 0.2, 7).unwrap();
        assert_eq!(test.len(), 20);
        assert_eq!(test.iter().filter(|&&row| y[row] == 1).count(), 6);
        let mut all: Vec<_> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn split_is_reproducible_for_a_seed_and_changes_with_it() {
        let y = target();
        assert_eq!(
            stratified_split(&y, 2, 0.2, 1).unwrap(),
            stratified_split(&y, 2, 0.2, 1).unwrap()
        );
        assert_ne!(
            stratified_split(&y, 2, 0.2, 1).unwrap(),
            stratified_split(&y, 2, 0.2, 2).unwrap()
        );
    }

    #[test]
    fn bad_test_size_is_refused() {
        assert!(stratified_split(&target(), 2, 1.0, 0).is_err());
        assert!(stratified_split(&target(), 2, 0.0, 0).is_err());
        assert!(stratified_split(&target(), 2, f64::NAN, 0).is_err());
    }

    #[test]
    fn kfold_partitions_rows_into_balanced_folds() {
        let y = target();
        let rows: Vec<usize> = (0..100).collect();
        let folds = stratified_kfold(&rows, &y, 2, 5, 3).unwrap();
        assert_eq!(folds.len(), 5);
        let mut seen = vec![0; 100];
        for (train, validation) in &folds {
            assert_eq!(validation.len(), 20);
            assert_eq!(train.len() + validation.len(), 100);
            assert_eq!(validation.iter().filter(|&&row| y[row] == 1).count(), 6);
            for &row in validation {
                seen[row] += 1;
            }
        }
        assert!(seen.iter().all(|&count| count == 1));
    }

    #[test]
    fn shuffled_splits_and_folds_cover_every_row_once() {
        let (train, test) = shuffled_split(100, 0.25, 4).unwrap();
        assert_eq!(test.len(), 25);
        // scikit-learn rounds the held-out rows up: 442 × 0.2 = 88.4 → 89.
        assert_eq!(shuffled_split(442, 0.2, 4).unwrap().1.len(), 89);
        assert!(
            shuffled_split(1, 0.5, 4).is_err(),
            "nothing left to train on"
        );
        assert!(shuffled_split(10, 1.0, 4).is_err());
        let mut all: Vec<_> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_ne!(test, (75..100).collect::<Vec<_>>(), "rows are shuffled");
        let folds = kfold(&train, 5, 4).unwrap();
        let mut seen: Vec<usize> = folds.iter().flat_map(|(_, v)| v.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, train);
        assert!(folds.iter().all(|(_, v)| v.len() == 15));
    }

    #[test]
    fn kfold_refuses_more_folds_than_rows() {
        let error = stratified_kfold(&[0, 1], &[0, 1], 2, 3, 0).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more folds than the 2 training rows")
        );
    }
}
