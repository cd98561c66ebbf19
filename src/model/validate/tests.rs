//! Unit tests of `src/model/validate.rs`.

use super::*;
use crate::model::ExampleValue;
use serde_json::json;

fn feature(name: &str, kind: ColumnKind) -> FeatureSchema {
    FeatureSchema {
        name: name.into(),
        kind,
        nullable: false,
        example: ExampleValue::Number(1.0),
        min: Some(0.0),
        max: Some(10.0),
        mean: None,
        std: None,
        categories: (kind == ColumnKind::Categorical).then(|| vec!["red".into(), "blue".into()]),
        frequencies: None,
        baseline: None,
    }
}

fn validator() -> Validator {
    Validator::new(&[
        feature("x", ColumnKind::Number),
        feature("n", ColumnKind::Integer),
        feature("b", ColumnKind::Boolean),
        feature("c", ColumnKind::Categorical),
    ])
}

fn check_json(body: serde_json::Value) -> Result<ValidRow, Vec<FieldError>> {
    let object = body.as_object().unwrap().clone();
    let mut errors = Vec::new();
    let row = validator().validate(
        object.iter().map(|(k, v)| (k.as_str(), RawValue::Json(v))),
        UnknownFields::Reject,
        "",
        &mut errors,
    );
    row.ok_or(errors)
}

fn messages(errors: Vec<FieldError>) -> Vec<String> {
    errors
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

#[test]
fn free_text_refuses_a_nul_character() {
    let validator = Validator::new(&[feature("t", ColumnKind::String)]);
    let mut errors = Vec::new();
    let text = json!("a\0b");
    let row = validator.validate(
        [("t", RawValue::Json(&text))],
        UnknownFields::Reject,
        "",
        &mut errors,
    );
    assert!(row.is_none());
    assert!(messages(errors)[0].contains("NUL"));
    let fine = json!("a b");
    let row = validator.validate(
        [("t", RawValue::Json(&fine))],
        UnknownFields::Reject,
        "",
        &mut Vec::new(),
    );
    assert_eq!(row.unwrap().values, [FeatureValue::Text("a b".into())]);
}

#[test]
fn a_good_row_comes_back_in_schema_order() {
    let row = check_json(json!({"c": "blue", "b": true, "n": 3, "x": 2.5})).unwrap();
    assert_eq!(
        row.values,
        [
            FeatureValue::Number(2.5),
            FeatureValue::Number(3.0),
            FeatureValue::Number(1.0),
            FeatureValue::Category("blue".into())
        ]
    );
    assert!(row.warnings.is_empty());
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors =
        check_json(json!({"x": "1.5", "n": 10.1, "b": 1, "c": "green", "extra": 1})).unwrap_err();
    assert_eq!(
        messages(errors),
        [
            "x: expected a finite number, got the string \"1.5\"",
            "n: expected an integer, got 10.1",
            "b: expected a boolean (true or false), got the number 1",
            "c: unknown category \"green\": expected one of \"red\", \"blue\"",
            "extra: unknown field: not a feature of this model",
        ]
    );
}

#[test]
fn missing_and_null_fields_are_named() {
    let errors = check_json(json!({"x": null, "n": 1, "b": false})).unwrap_err();
    assert_eq!(
        messages(errors),
        [
            "x: expected a finite number, got null",
            "c: missing: expected one of \"red\", \"blue\""
        ]
    );
}

#[test]
fn non_finite_words_are_refused_with_a_clear_message() {
    let errors =
        check_json(json!({"x": "NaN", "n": "Infinity", "b": true, "c": "red"})).unwrap_err();
    assert_eq!(
        messages(errors),
        [
            "x: expected a finite number, got NaN: not a finite number",
            "n: expected an integer, got Infinity: not a finite number"
        ]
    );
}

#[test]
fn out_of_range_values_are_accepted_with_a_warning() {
    let row = check_json(json!({"x": 11.0, "n": -2, "b": true, "c": "red"})).unwrap();
    let warnings: Vec<String> = row.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "x = 11 is above the training maximum 10",
            "n = -2 is below the training minimum 0"
        ]
    );
}

#[test]
fn text_values_parse_by_type() {
    let mut errors = Vec::new();
    let fields = [
        ("x", RawValue::Text("1e-3")),
        ("n", RawValue::Text("7")),
        ("b", RawValue::Text("FALSE")),
        ("c", RawValue::Text("red")),
    ];
    let row = validator()
        .validate(fields, UnknownFields::Reject, "", &mut errors)
        .unwrap();
    assert_eq!(row.values[0], FeatureValue::Number(0.001));
    let bad = [
        ("x", RawValue::Text("inf")),
        ("n", RawValue::Text("2.5")),
        ("b", RawValue::Text("yes")),
        ("c", RawValue::Text("")),
    ];
    assert!(
        validator()
            .validate(bad, UnknownFields::Reject, "rows[1].", &mut errors)
            .is_none()
    );
    assert_eq!(
        messages(errors),
        [
            "rows[1].x: expected a finite number, got inf: not a finite number",
            "rows[1].n: expected an integer, got 2.5",
            "rows[1].b: expected a boolean (true or false), got \"yes\"",
            "rows[1].c: expected one of \"red\", \"blue\", got an empty value",
        ]
    );
}

#[test]
fn strings_dates_and_date_times_follow_rfc_3339() {
    let mut nullable = feature("note", ColumnKind::String);
    nullable.nullable = true;
    let validator = Validator::new(&[
        feature("day", ColumnKind::Date),
        feature("at", ColumnKind::DateTime),
        nullable,
    ]);
    let check = |day: serde_json::Value, at: serde_json::Value, note: serde_json::Value| {
        let mut errors = Vec::new();
        let fields = [
            ("day", RawValue::Json(&day)),
            ("at", RawValue::Json(&at)),
            ("note", RawValue::Json(&note)),
        ];
        validator
            .validate(fields, UnknownFields::Reject, "", &mut errors)
            .map(|row| row.values)
            .ok_or_else(|| messages(errors))
    };
    let row = check(
        json!("2024-05-17"),
        json!("2024-05-17T09:30:00+02:00"),
        json!(null),
    )
    .unwrap();
    assert_eq!(row[2], FeatureValue::Missing);
    assert_eq!(row[0], FeatureValue::Text("2024-05-17".into()));
    assert!(
        check(
            json!("2024-05-17"),
            json!("2024-05-17T09:30:00Z"),
            json!("a note")
        )
        .is_ok()
    );
    let errors = check(json!("17/05/2024"), json!("2024-05-17 09:30"), json!(3)).unwrap_err();
    assert_eq!(
        errors,
        [
            "day: expected an RFC 3339 date (YYYY-MM-DD), got \"17/05/2024\": not an RFC 3339 date",
            "at: expected an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SSZ or with an offset), got \"2024-05-17 09:30\": not an RFC 3339 date-time",
            "note: expected a string, got the number 3",
        ]
    );
    let errors = check(json!("2024-02-30"), json!(null), json!(null)).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn unknown_fields_can_be_ignored() {
    let mut errors = Vec::new();
    let fields = [
        ("x", RawValue::Text("1")),
        ("n", RawValue::Text("1")),
        ("b", RawValue::Text("true")),
        ("c", RawValue::Text("red")),
        ("id", RawValue::Text("abc")),
    ];
    assert!(
        validator()
            .validate(fields, UnknownFields::Ignore, "", &mut errors)
            .is_some()
    );
    assert!(errors.is_empty());
}

#[test]
fn fields_in_schema_order_or_not_and_repeated_ones_are_told_apart() {
    let (x, n, b, c) = (json!(2.5), json!(3), json!(true), json!("red"));
    let validate = |fields: &[(&'static str, &serde_json::Value)]| {
        let mut errors = Vec::new();
        let row = validator().validate(
            fields.iter().map(|&(k, v)| (k, RawValue::Json(v))),
            UnknownFields::Reject,
            "",
            &mut errors,
        );
        (row.map(|r| r.values), messages(errors))
    };
    let expected = vec![
        FeatureValue::Number(2.5),
        FeatureValue::Number(3.0),
        FeatureValue::Number(1.0),
        FeatureValue::Category("red".into()),
    ];
    let in_order = validate(&[("x", &x), ("n", &n), ("b", &b), ("c", &c)]);
    assert_eq!(in_order, (Some(expected.clone()), vec![]));
    let shuffled = validate(&[("n", &n), ("c", &c), ("x", &x), ("b", &b)]);
    assert_eq!(shuffled, (Some(expected), vec![]));
    // A repeat found by the schema-order guess (the second "n" comes at n's own place) and
    // one found by the name lookup (the second "x" comes where "n" belongs).
    let (row, errors) = validate(&[("n", &n), ("n", &n), ("x", &x), ("b", &b), ("c", &c)]);
    assert_eq!(row, None);
    assert_eq!(errors, ["n: given more than once"]);
    let (row, errors) = validate(&[("x", &x), ("x", &x), ("n", &n), ("b", &b), ("c", &c)]);
    assert_eq!(row, None);
    assert_eq!(errors, ["x: given more than once"]);
}
