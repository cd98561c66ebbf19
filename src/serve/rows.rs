//! Reading prediction bodies straight into rows of (field, value) pairs.
//!
//! A body is parsed once, with field names borrowed from the request bytes and no
//! intermediate JSON object: on the hot path (one small row) building a general
//! `serde_json::Value` map and then walking it cost more than the prediction itself.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The fields of one row, in the order they came.
pub type Fields<'a> = Vec<(Cow<'a, str>, Value)>;

/// What a prediction body holds.
#[derive(Debug)]
pub enum PredictBody<'a> {
    /// One object of features.
    Single(Fields<'a>),
    /// `{"instances": [...]}`: each item an object of features, or what else it was.
    Batch(Vec<Result<Fields<'a>, &'static str>>),
    /// A batch of this many rows, over the limit: counted, not kept.
    TooManyRows(usize),
    /// Not a body of either shape; says what it was.
    Misshapen(String),
}

/// A field name, borrowed from the body unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn read_fields<'de, A: MapAccess<'de>>(
    mut map: A,
    mut fields: Fields<'de>,
) -> Result<Fields<'de>, A::Error> {
    while let Some(Key(name)) = map.next_key()? {
        fields.push((name, map.next_value()?));
    }
    Ok(fields)
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// One item of `instances`.
struct Item<'a>(Result<Fields<'a>, &'static str>);

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of features")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<'de>, A::Error> {
                Ok(Item(Ok(read_fields(map, Vec::new())?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(Item(Err("an array")))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Item<'de>, E> {
                Ok(Item(Err("a string")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item<'de>, E> {
                Ok(Item(Err("a number")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item<'de>, E> {
                Ok(Item(Err("a number")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item<'de>, E> {
                Ok(Item(Err("a number")))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Item<'de>, E> {
                Ok(Item(Err("a boolean")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Item<'de>, E> {
                Ok(Item(Err("null")))
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// The value of a leading `instances` key: a batch when it is an array, else an ordinary value.
enum Instances<'a> {
    Rows(Vec<Result<Fields<'a>, &'static str>>),
    TooMany(usize),
    Value(Value),
}

/// Reads `instances`, keeping at most `max_rows` rows: a body over the limit costs a count,
/// not the memory of its rows.
struct InstancesSeed {
    max_rows: usize,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed {
    type Value = Instances<'de>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Instances<'de>, D::Error> {
        struct InstancesVisitor {
            max_rows: usize,
        }
        impl<'de> Visitor<'de> for InstancesVisitor {
            type Value = Instances<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Instances<'de>, A::Error> {
                let mut rows =
                    Vec::with_capacity(seq.size_hint().unwrap_or(16).min(self.max_rows).min(4096));
                while rows.len() < self.max_rows {
                    match seq.next_element()? {
                        Some(Item(item)) => rows.push(item),
                        None => return Ok(Instances::Rows(rows)),
                    }
                }
                let mut count = rows.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(if count > self.max_rows {
                    Instances::TooMany(count)
                } else {
                    Instances::Rows(rows)
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Instances<'de>, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Instances::Value)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::String(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::from(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Instances<'de>, E> {
                Ok(Instances::Value(Value::Null))
            }
        }
        deserializer.deserialize_any(InstancesVisitor {
            max_rows: self.max_rows,
        })
    }
}

/// Reads a prediction body, keeping at most `max_rows` rows of a batch.
#[derive(Debug, Clone, Copy)]
pub struct PredictBodySeed {
    /// The batch limit.
    pub max_rows: usize,
}

impl<'de> Deserialize<'de> for PredictBody<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PredictBodySeed {
            max_rows: usize::MAX,
        }
        .deserialize(deserializer)
    }
}

impl<'de> DeserializeSeed<'de> for PredictBodySeed {
    type Value = PredictBody<'de>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<PredictBody<'de>, D::Error> {
        struct BodyVisitor {
            max_rows: usize,
        }
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = PredictBody<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of features, or {\"instances\": [...]}")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PredictBody<'de>, A::Error> {
                let Some(Key(first)) = map.next_key()? else {
                    return Ok(PredictBody::Single(Vec::new()));
                };
                if first != "instances" {
                    let value = map.next_value()?;
                    let mut fields = Vec::with_capacity(32);
                    fields.push((first, value));
                    return Ok(PredictBody::Single(read_fields(map, fields)?));
                }
                match map.next_value_seed(InstancesSeed {
                    max_rows: self.max_rows,
                })? {
                    Instances::Rows(rows) => {
                        if map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                            drain_map(map)?;
                            return Ok(PredictBody::Misshapen(
                                "a batch holds \"instances\" and nothing else".to_string(),
                            ));
                        }
                        Ok(PredictBody::Batch(rows))
                    }
                    Instances::TooMany(count) => {
                        drain_map(map)?;
                        Ok(PredictBody::TooManyRows(count))
                    }
                    // An "instances" that is not an array is an ordinary (unknown) field.
                    Instances::Value(value) => {
                        Ok(PredictBody::Single(read_fields(map, vec![(first, value)])?))
                    }
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PredictBody<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(misshapen("an array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("a string"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("a number"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PredictBody<'de>, E> {
                Ok(misshapen("null"))
            }
        }
        deserializer.deserialize_any(BodyVisitor {
            max_rows: self.max_rows,
        })
    }
}

fn misshapen<'a>(what: &str) -> PredictBody<'a> {
    PredictBody::Misshapen(format!(
        "expected a JSON object of features, or {{\"instances\": [objects of features]}}; got {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> PredictBody<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn one_object_is_a_single_row_with_borrowed_names() {
        let PredictBody::Single(fields) = parse(r#"{"a": 1.5, "b\u0041": "x", "c": null}"#) else {
            panic!("single row expected")
        };
        assert!(matches!(fields[0].0, Cow::Borrowed("a")));
        assert_eq!(fields[1], (Cow::Owned("bA".to_string()), json!("x")));
        assert_eq!(fields[2].1, Value::Null);
    }

    #[test]
    fn instances_array_is_a_batch_and_items_keep_their_kind() {
        let PredictBody::Batch(rows) = parse(r#"{"instances": [{"a": 1}, [1], 3]}"#) else {
            panic!("batch expected")
        };
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].as_ref().unwrap()[0].1, json!(1));
        assert_eq!(rows[1], Err("an array"));
        assert_eq!(rows[2], Err("a number"));
    }

    #[test]
    fn a_batch_over_the_limit_is_counted_not_kept() {
        let mut deserializer =
            serde_json::Deserializer::from_str(r#"{"instances": [{"a": 1}, {"a": 2}, {"a": 3}]}"#);
        let body = PredictBodySeed { max_rows: 2 }
            .deserialize(&mut deserializer)
            .unwrap();
        assert!(matches!(body, PredictBody::TooManyRows(3)));
        let mut deserializer =
            serde_json::Deserializer::from_str(r#"{"instances": [{"a": 1}, {"a": 2}]}"#);
        let body = PredictBodySeed { max_rows: 2 }
            .deserialize(&mut deserializer)
            .unwrap();
        assert!(matches!(body, PredictBody::Batch(rows) if rows.len() == 2));
    }

    #[test]
    fn other_shapes_are_named() {
        assert!(
            matches!(parse("[1, 2]"), PredictBody::Misshapen(m) if m.ends_with("got an array"))
        );
        assert!(matches!(
            parse(r#"{"instances": [], "x": 1}"#),
            PredictBody::Misshapen(_)
        ));
        let PredictBody::Single(fields) = parse(r#"{"instances": 5, "x": 1}"#) else {
            panic!("a non-array instances is an ordinary field")
        };
        assert_eq!(fields.len(), 2);
    }
}
