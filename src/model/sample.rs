//! Random rows drawn from a model's training statistics, for people trying a model out.
//!
//! Each feature is drawn on its own: numbers from a normal distribution with the training
//! mean and standard deviation, kept inside the training range and written with the
//! precision of the example value; booleans and categories by their training shares. Text,
//! dates and date-times keep the example, since the manifest has no distribution for them.

use super::manifest::{ExampleValue, FeatureSchema};
use crate::data::ColumnKind;
use rand::{Rng, RngExt};

/// A random row, as text values by feature name in schema order (what a form holds).
pub fn random_row(features: &[FeatureSchema], rng: &mut impl Rng) -> Vec<(String, String)> {
    features
        .iter()
        .map(|feature| (feature.name.clone(), random_value(feature, rng)))
        .collect()
}

/// The example row as text values by feature name in schema order.
pub fn example_row(features: &[FeatureSchema]) -> Vec<(String, String)> {
    features
        .iter()
        .map(|feature| (feature.name.clone(), example_text(&feature.example)))
        .collect()
}

/// A feature's example value as a form holds it.
pub fn example_text(example: &ExampleValue) -> String {
    match example {
        ExampleValue::Bool(b) => b.to_string(),
        ExampleValue::Integer(i) => i.to_string(),
        ExampleValue::Number(n) => n.to_string(),
        ExampleValue::Text(t) => t.clone(),
    }
}

fn random_value(feature: &FeatureSchema, rng: &mut impl Rng) -> String {
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => match draw_number(feature, rng) {
            Some(value) if feature.kind == ColumnKind::Integer => {
                format!("{}", value.round() as i64)
            }
            Some(value) => format_like_example(value, &feature.example),
            None => example_text(&feature.example),
        },
        ColumnKind::Boolean => {
            let share = feature.mean.unwrap_or(0.5).clamp(0.0, 1.0);
            rng.random_bool(share).to_string()
        }
        ColumnKind::Categorical => draw_category(feature, rng),
        ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => {
            example_text(&feature.example)
        }
    }
}

/// A normal draw (Box–Muller) clamped to the training range.
fn draw_number(feature: &FeatureSchema, rng: &mut impl Rng) -> Option<f64> {
    let (mean, std) = (feature.mean?, feature.std.unwrap_or(0.0));
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1], so ln is finite
    let u2: f64 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let value = mean + std * z;
    let low = feature.min.unwrap_or(f64::NEG_INFINITY);
    let high = feature.max.unwrap_or(f64::INFINITY);
    Some(value.clamp(low.min(high), high.max(low)))
}

/// Writes a number with as many decimals as the example has (between 1 and 6), so a random
/// iris row reads like `5.8`, not `5.812734119`.
fn format_like_example(value: f64, example: &ExampleValue) -> String {
    let decimals = match example {
        ExampleValue::Number(n) => {
            let text = n.to_string();
            text.split_once('.')
                .map_or(1, |(_, fraction)| fraction.len())
        }
        _ => 2,
    }
    .clamp(1, 6);
    let text = format!("{value:.decimals$}");
    // "5.800" → "5.8": the shortest form of the rounded value.
    text.parse::<f64>().map_or(text, |v| v.to_string())
}

fn draw_category(feature: &FeatureSchema, rng: &mut impl Rng) -> String {
    let Some(categories) = &feature.categories else {
        return example_text(&feature.example);
    };
    let weight = |category: &String| {
        feature
            .frequencies
            .as_ref()
            .and_then(|f| f.get(category))
            .copied()
            .unwrap_or(1.0)
            .max(0.0)
    };
    let total: f64 = categories.iter().map(weight).sum();
    if total <= 0.0 {
        return example_text(&feature.example);
    }
    let mut target = rng.random::<f64>() * total;
    for category in categories {
        target -= weight(category);
        if target < 0.0 {
            return category.clone();
        }
    }
    categories
        .last()
        .cloned()
        .unwrap_or_else(|| example_text(&feature.example))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::BTreeMap;

    fn number_feature(min: f64, max: f64, mean: f64, std: f64, example: f64) -> FeatureSchema {
        FeatureSchema {
            name: "x".into(),
            kind: ColumnKind::Number,
            nullable: false,
            example: ExampleValue::Number(example),
            min: Some(min),
            max: Some(max),
            mean: Some(mean),
            std: Some(std),
            categories: None,
            frequencies: None,
            baseline: None,
        }
    }

    #[test]
    fn numbers_stay_in_the_training_range_with_the_example_precision() {
        let feature = number_feature(4.3, 7.9, 5.8, 3.0, 5.1);
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let text = random_value(&feature, &mut rng);
            let value: f64 = text.parse().unwrap();
            assert!((4.3..=7.9).contains(&value), "{value} out of range");
            assert!(
                text.split_once('.').is_none_or(|(_, f)| f.len() <= 1),
                "{text}"
            );
            seen.insert(text);
        }
        assert!(seen.len() > 10, "draws vary: {seen:?}");
    }

    #[test]
    fn categories_follow_their_training_shares() {
        let feature = FeatureSchema {
            kind: ColumnKind::Categorical,
            example: ExampleValue::Text("a".into()),
            min: None,
            max: None,
            mean: None,
            std: None,
            categories: Some(vec!["a".into(), "b".into()]),
            frequencies: Some(BTreeMap::from([("a".into(), 0.9), ("b".into(), 0.1)])),
            ..number_feature(0.0, 0.0, 0.0, 0.0, 0.0)
        };
        let mut rng = StdRng::seed_from_u64(1);
        let a = (0..2000)
            .filter(|_| random_value(&feature, &mut rng) == "a")
            .count();
        assert!((1700..1900).contains(&a), "share of a: {a}/2000");
    }

    #[test]
    fn integers_are_whole() {
        let feature = FeatureSchema {
            kind: ColumnKind::Integer,
            example: ExampleValue::Integer(3),
            ..number_feature(0.0, 10.0, 5.0, 2.0, 0.0)
        };
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            let text = random_value(&feature, &mut rng);
            let value: i64 = text.parse().unwrap();
            assert!((0..=10).contains(&value));
        }
    }
}
