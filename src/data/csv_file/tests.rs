//! Reading labelled CSV files: types detected, errors by line and column, missing values.
use super::*;
use std::io::Write;

fn load(text: &str, categorical: &[&str]) -> Result<Dataset, DataError> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let options = CsvOptions {
        target: "y".into(),
        categorical: categorical.iter().map(|s| s.to_string()).collect(),
        task: None,
        missing_values: false,
    };
    load_csv(file.path(), &options)
}

#[test]
fn detects_each_column_kind() {
    let data = load(
        "age,score,smoker,city,y\n30,1.5,true,Oslo,yes\n41,2.25,false,Rome,no\n52,3,TRUE,Oslo,yes\n",
        &[],
    )
    .unwrap();
    let kinds: Vec<_> = data.columns.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ColumnKind::Integer,
            ColumnKind::Number,
            ColumnKind::Boolean,
            ColumnKind::Categorical
        ]
    );
    let (classes, labels) = data.classes().unwrap();
    assert_eq!(labels, ["no", "yes"]);
    assert_eq!(classes, [1, 0, 1]);
    assert_eq!(
        data.task_reason.as_deref(),
        Some("the target 'y' holds text: classification")
    );
    assert_eq!(
        data.columns[2].values,
        ColumnValues::Numeric(vec![1.0, 0.0, 1.0])
    );
}

#[test]
fn declared_categorical_keeps_numbers_as_text() {
    let data = load("zip,y\n1000,0\n2000,1\n1000,1\n", &["zip"]).unwrap();
    assert_eq!(data.columns[0].kind, ColumnKind::Categorical);
    assert_eq!(
        data.columns[0].values,
        ColumnValues::Text(vec!["1000".into(), "2000".into(), "1000".into()])
    );
}

#[test]
fn integer_labels_sort_numerically() {
    let data = load("x,y\n1,10\n2,9\n3,10\n", &[]).unwrap();
    assert_eq!(data.classes().unwrap().1, ["9", "10"]);
}

fn load_as(text: &str, task: Option<Task>) -> Result<Dataset, DataError> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let options = CsvOptions {
        target: "y".into(),
        categorical: Vec::new(),
        task,
        missing_values: false,
    };
    load_csv(file.path(), &options)
}

fn load_with_missing_values(text: &str) -> Result<Dataset, DataError> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let options = CsvOptions {
        target: "y".into(),
        missing_values: true,
        ..CsvOptions::default()
    };
    load_csv(file.path(), &options)
}

#[test]
fn empty_feature_cells_are_missing_values_when_the_algorithm_takes_them() {
    let text = "x,c,y\n1.5,a,0\n,b,1\n2.5,,0\n";
    let data = load_with_missing_values(text).unwrap();
    let ColumnValues::Numeric(x) = &data.columns[0].values else {
        panic!("x is numeric")
    };
    assert_eq!(data.columns[0].kind, ColumnKind::Number);
    assert!(x[0] == 1.5 && x[1].is_nan() && x[2] == 2.5);
    assert_eq!(data.columns[1].kind, ColumnKind::Categorical);
    assert_eq!(
        data.columns[1].values,
        ColumnValues::Text(vec!["a".into(), "b".into(), String::new()])
    );
    let refused = load_as(text, None).unwrap_err().to_string();
    assert!(
        refused.ends_with(
            "column 'x' is empty; every cell needs a value (of the algorithms, \
             gradient-boosting alone learns from missing feature values)"
        ),
        "{refused}"
    );
}

#[test]
fn an_empty_target_or_a_column_without_values_is_refused_even_so() {
    let error = load_with_missing_values("x,y\n1,0\n2,\n").unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("column 'y' is empty; every cell needs a value")
    );
    let error = load_with_missing_values("x,z,y\n1,,0\n2,,1\n").unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("column 'z' has no value in any row; leave it out of the file"),
        "{error}"
    );
}

#[test]
fn the_task_is_inferred_from_the_target_and_said_why() {
    let fractions = load_as("x,y\n1,0.5\n2,1.25\n3,0.5\n", None).unwrap();
    assert_eq!(fractions.target, Target::Values(vec![0.5, 1.25, 0.5]));
    assert!(
        fractions
            .task_reason
            .unwrap()
            .contains("numbers with fractions: regression")
    );
    let few_whole = load_as("x,y\n1,3\n2,1\n3,3\n", None).unwrap();
    assert_eq!(few_whole.target.task(), Task::Classification);
    let written_as_floats = load_as("x,y\n1,0.0\n2,1.0\n3,1.0\n", None).unwrap();
    assert_eq!(written_as_floats.target.task(), Task::Classification);
    let booleans = load_as("x,y\n1,true\n2,false\n", None).unwrap();
    assert!(booleans.task_reason.unwrap().contains("true and false"));
    let many: String = (0..=MAX_INFERRED_CLASSES)
        .map(|i| format!("{i},{}\n", i * 7))
        .collect();
    let many_whole = load_as(&format!("x,y\n{many}"), None).unwrap();
    assert_eq!(many_whole.target.task(), Task::Regression);
    assert!(
        many_whole
            .task_reason
            .unwrap()
            .contains("21 distinct whole numbers: regression")
    );
}

#[test]
fn an_asked_task_wins_and_a_text_target_cannot_be_a_number() {
    let classes = load_as("x,y\n1,0.5\n2,1.25\n", Some(Task::Classification)).unwrap();
    assert_eq!(classes.classes().unwrap().1, ["0.5", "1.25"]);
    assert_eq!(classes.task_reason, None);
    let values = load_as("x,y\n1,3\n2,1\n", Some(Task::Regression)).unwrap();
    assert_eq!(values.target, Target::Values(vec![3.0, 1.0]));
    let error = load_as("x,y\n1,3\n2,high\n", Some(Task::Regression)).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with(":3: the target column 'y' must hold numbers for regression, got 'high'"),
        "{error}"
    );
}

#[test]
fn bad_cell_names_line_and_column() {
    let error = load("a,b,y\n1,2,x\n3,4,x\n5,oops,z\n", &[]).unwrap_err();
    assert_eq!(
        error.to_string().split_once(':').unwrap().1,
        "4: column 'b': expected a finite number, got 'oops'"
    );
}

#[test]
fn empty_cell_names_line_and_column() {
    let error = load("a,b,y\n1,2,x\n3,,z\n", &[]).unwrap_err();
    assert!(matches!(error, DataError::EmptyCell { line: 3, ref column, .. } if column == "b"));
}

#[test]
fn missing_target_lists_columns() {
    let error = load("a,b\n1,2\n", &[]).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("no column named 'y' for the target; the columns are: a, b")
    );
}

#[test]
fn header_of_numbers_is_refused() {
    let error = load("1,2,3\n4,5,6\n", &[]).unwrap_err();
    assert!(matches!(error, DataError::NoHeader { .. }));
}

#[test]
fn ragged_row_is_malformed_with_line() {
    let error = load("a,y\n1,x\n2,y,3\n", &[]).unwrap_err();
    assert!(
        matches!(error, DataError::Malformed { line: 3, .. }),
        "{error}"
    );
}

#[test]
fn single_class_is_refused() {
    let error = load("a,y\n1,x\n2,x\n", &[]).unwrap_err();
    assert!(matches!(error, DataError::SingleClass { .. }));
}
