//! The datasets that ship inside the binary, named as scikit-learn names them: breast cancer and
//! iris from smartcore, diabetes as scikit-learn ships it.

use super::{Column, ColumnKind, ColumnValues, Dataset, Target};
use sha2::{Digest, Sha256};

/// A dataset bundled with mlserve: no download, no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BundledDataset {
    /// Breast cancer Wisconsin (diagnostic): 569 rows, 30 numeric features, malignant or benign.
    BreastCancer,
    /// Iris: 150 rows, 4 numeric features, three species.
    Iris,
    /// Diabetes (Efron et al., 2004): 442 rows, 10 features in their original units (age,
    /// sex, body mass index, blood pressure, six blood serum measurements), and a number to
    /// predict: disease progression one year later (regression).
    Diabetes,
}

impl BundledDataset {
    /// The name used on the command line and in provenance.
    pub fn cli_name(self) -> &'static str {
        match self {
            BundledDataset::BreastCancer => "breast-cancer",
            BundledDataset::Iris => "iris",
            BundledDataset::Diabetes => "diabetes",
        }
    }

    /// The default model name for this dataset.
    pub fn model_name(self) -> &'static str {
        match self {
            BundledDataset::BreastCancer => "breast_cancer",
            BundledDataset::Iris => "iris",
            BundledDataset::Diabetes => "diabetes",
        }
    }
}

/// Loads a bundled dataset with snake_case feature names and named classes.
pub fn load_bundled(which: BundledDataset) -> Dataset {
    let (raw, labels) = match which {
        BundledDataset::Diabetes => return load_diabetes(),
        // smartcore encodes breast cancer as scikit-learn does: 0 = malignant, 1 = benign.
        BundledDataset::BreastCancer => (
            smartcore::dataset::breast_cancer::load_dataset(),
            vec!["malignant", "benign"],
        ),
        BundledDataset::Iris => (
            smartcore::dataset::iris::load_dataset(),
            vec!["setosa", "versicolor", "virginica"],
        ),
    };
    let mut raw = raw;
    if which == BundledDataset::Iris {
        correct_uci_iris(&mut raw.data, raw.num_features);
    }
    let mut hasher = Sha256::new();
    for value in &raw.data {
        hasher.update(value.to_le_bytes());
    }
    for class in &raw.target {
        hasher.update(class.to_le_bytes());
    }
    let columns = raw
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| Column {
            name: snake_case_feature_name(name),
            kind: ColumnKind::Number,
            values: ColumnValues::Numeric(
                (0..raw.num_samples)
                    .map(|i| shortest_f64(raw.data[i * raw.num_features + j]))
                    .collect(),
            ),
        })
        .collect();
    Dataset {
        source: which.cli_name().to_string(),
        sha256: format!("{:x}", hasher.finalize()),
        columns,
        target_name: "target".to_string(),
        target: Target::Classes {
            classes: raw.target.iter().map(|&class| class as usize).collect(),
            labels: labels.into_iter().map(String::from).collect(),
        },
        task_reason: None,
    }
}

/// `diabetes.csv`: scikit-learn's `load_diabetes(scaled=False)`, the original units rather
/// than smartcore's copy, which is the scaled form in f32 and whose S5 column differs from
/// scikit-learn's in the fourth digit. Sex is coded 1 or 2, as in the source.
const DIABETES_CSV: &str = include_str!("diabetes.csv");

fn load_diabetes() -> Dataset {
    let mut lines = DIABETES_CSV.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let (target_name, feature_names) = header.split_last().unwrap_or((&"target", &[]));
    let rows: Vec<Vec<f64>> = lines
        .map(|line| {
            line.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let column = |j: usize| rows.iter().map(|row| row[j]).collect::<Vec<f64>>();
    let columns = feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| Column {
            name: name.to_string(),
            kind: if *name == "sex" || *name == "age" {
                ColumnKind::Integer
            } else {
                ColumnKind::Number
            },
            values: ColumnValues::Numeric(column(j)),
        })
        .collect();
    Dataset {
        source: BundledDataset::Diabetes.cli_name().to_string(),
        sha256: format!("{:x}", Sha256::digest(DIABETES_CSV.as_bytes())),
        columns,
        target_name: target_name.to_string(),
        target: Target::Values(column(feature_names.len())),
        task_reason: None,
    }
}

/// smartcore ships the UCI iris file, which has two transcription errors that scikit-learn
/// (and Fisher's paper) correct: rows 35 and 38 (1-based). We serve the corrected data so that
/// models trained here compare with scikit-learn's row for row.
fn correct_uci_iris(data: &mut [f32], width: usize) {
    data[34 * width..35 * width].copy_from_slice(&[4.9, 3.1, 1.5, 0.2]);
    data[37 * width..38 * width].copy_from_slice(&[4.9, 3.6, 1.4, 0.1]);
}

/// "mean concave points" → "mean_concave_points"; "sepal length (cm)" → "sepal_length".
fn snake_case_feature_name(name: &str) -> String {
    let without_unit = name.split(" (").next().unwrap_or(name);
    without_unit.trim().replace(' ', "_")
}

/// The data ships as f32; widen it to the f64 with the same shortest decimal form,
/// so that 17.99 stays 17.99 in schemas and examples rather than 17.989999771118164.
fn shortest_f64(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breast_cancer_matches_scikit_learn_naming_and_counts() {
        let data = load_bundled(BundledDataset::BreastCancer);
        assert_eq!(data.n_rows(), 569);
        assert_eq!(data.columns.len(), 30);
        assert_eq!(data.columns[0].name, "mean_radius");
        assert_eq!(data.columns[7].name, "mean_concave_points");
        assert_eq!(data.columns[29].name, "worst_fractal_dimension");
        assert_eq!(data.class_counts(), vec![212, 357]);
        let ColumnValues::Numeric(radius) = &data.columns[0].values else {
            panic!("numeric column expected")
        };
        assert_eq!(radius[0], 17.99);
    }

    #[test]
    fn diabetes_is_scikit_learns_unscaled_data() {
        let data = load_bundled(BundledDataset::Diabetes);
        assert_eq!(data.n_rows(), 442);
        let names: Vec<_> = data.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"
            ]
        );
        assert_eq!(data.target_name, "disease_progression");
        let Target::Values(values) = &data.target else {
            panic!("a regression target expected")
        };
        // load_diabetes(scaled=False): the first row and the targets' sum.
        assert_eq!(values[..3], [151.0, 75.0, 141.0]);
        assert_eq!(values.iter().sum::<f64>(), 67243.0);
        let ColumnValues::Numeric(s5) = &data.columns[8].values else {
            panic!("numeric column expected")
        };
        assert_eq!(s5[0], 4.8598);
        assert!(data.columns.iter().all(|c| match &c.values {
            ColumnValues::Numeric(v) => v.len() == 442 && v.iter().all(|x| x.is_finite()),
            ColumnValues::Text(_) => false,
        }));
    }

    #[test]
    fn iris_has_three_balanced_species() {
        let data = load_bundled(BundledDataset::Iris);
        assert_eq!(data.n_rows(), 150);
        let names: Vec<_> = data.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        );
        assert_eq!(data.class_counts(), vec![50, 50, 50]);
        let row = |i: usize| -> Vec<f64> {
            data.columns
                .iter()
                .map(|c| match &c.values {
                    ColumnValues::Numeric(v) => v[i],
                    ColumnValues::Text(_) => f64::NAN,
                })
                .collect()
        };
        // scikit-learn's corrected rows, not the UCI file's typos.
        assert_eq!(row(34), [4.9, 3.1, 1.5, 0.2]);
        assert_eq!(row(37), [4.9, 3.6, 1.4, 0.1]);
    }
}
