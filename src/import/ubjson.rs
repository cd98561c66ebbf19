//! Reading UBJSON as XGBoost writes it (`save_model("model.ubj")`, its default format since 2.1)
//! into the same JSON value its JSON format gives, so one reader serves both. Numbers are
//! big-endian; objects are `{` (key: `L` length, bytes)… `}`; arrays `[` `#` count, or typed
//! `[` `$` type `#` count, or open-ended `[` … `]` (the UBJSON specification). A count larger
//! than what is left of the file is refused before anything is allocated for it.

use serde_json::{Map, Number, Value};

/// Decodes a UBJSON document.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes, at: 0 };
    let marker = reader.byte()?;
    reader.value(marker, 0)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Nesting deeper than this is refused (XGBoost's documents are 6 levels deep).
const MAX_DEPTH: usize = 64;

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("the UBJSON ends early, at byte {}", self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("the UBJSON ends early, at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn integer(&mut self, marker: u8) -> Result<i64, String> {
        Ok(match marker {
            b'i' => i64::from(self.take(1)?[0] as i8),
            b'U' => i64::from(self.take(1)?[0]),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            other => {
                return Err(format!(
                    "expected an integer, found marker '{}'",
                    other as char
                ));
            }
        })
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn count(&mut self) -> Result<usize, String> {
        let marker = self.byte()?;
        let count = self.integer(marker)?;
        usize::try_from(count)
            .ok()
            .filter(|&c| c <= self.bytes.len() - self.at)
            .ok_or_else(|| format!("a count of {count} does not fit the file"))
    }

    fn text(&mut self) -> Result<String, String> {
        let length = self.count()?;
        String::from_utf8(self.take(length)?.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("the UBJSON nests too deep".to_string());
        }
        let number = |n: Option<Number>| n.map(Value::Number).unwrap_or(Value::Null);
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.integer(marker)?),
            b'd' => number(Number::from_f64(f64::from(f32::from_be_bytes(
                self.array()?,
            )))),
            b'D' => number(Number::from_f64(f64::from_be_bytes(self.array()?))),
            b'S' | b'H' => Value::String(self.text()?),
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'[' => self.list(depth)?,
            b'{' => self.object(depth)?,
            other => return Err(format!("unknown UBJSON marker '{}'", other as char)),
        })
    }

    fn list(&mut self, depth: usize) -> Result<Value, String> {
        let mut next = self.byte()?;
        let mut element = None;
        if next == b'$' {
            element = Some(self.byte()?);
            next = self.byte()?;
        }
        let mut items = Vec::new();
        if next == b'#' {
            let count = self.count()?;
            // Every element takes bytes of the file: its marker, or its typed size. A typed
            // array of types that take none (null, true, false) is refused, as is a count that
            // needs more bytes than are left; so the file's size bounds what is allocated.
            let size = match element {
                None => 1,
                Some(b'i' | b'U' | b'C') => 1,
                Some(b'I') => 2,
                Some(b'l' | b'd') => 4,
                Some(b'L' | b'D') => 8,
                Some(b'S' | b'H' | b'[' | b'{') => 2,
                Some(other) => {
                    return Err(format!(
                        "a typed array of '{}' is not something a model file holds",
                        other as char
                    ));
                }
            };
            if count.saturating_mul(size) > self.bytes.len() - self.at {
                return Err(format!("a count of {count} does not fit the file"));
            }
            items.reserve(count);
            for _ in 0..count {
                let marker = match element {
                    Some(marker) => marker,
                    None => self.byte()?,
                };
                items.push(self.value(marker, depth + 1)?);
            }
            return Ok(Value::Array(items));
        }
        while next != b']' {
            items.push(self.value(next, depth + 1)?);
            next = self.byte()?;
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let mut map = Map::new();
        loop {
            let marker = self.byte()?;
            if marker == b'}' {
                return Ok(Value::Object(map));
            }
            let length = self.integer(marker)?;
            let length = usize::try_from(length).map_err(|_| "a negative key length")?;
            let key = String::from_utf8(self.take(length)?.to_vec())
                .map_err(|_| "a key is not UTF-8".to_string())?;
            let value_marker = self.byte()?;
            let value = self.value(value_marker, depth + 1)?;
            map.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arrays_objects_and_big_endian_numbers_decode() {
        let mut bytes = b"{L\x00\x00\x00\x00\x00\x00\x00\x01a[$d#i\x02".to_vec();
        bytes.extend_from_slice(&1.5f32.to_be_bytes());
        bytes.extend_from_slice(&(-2.0f32).to_be_bytes());
        bytes.extend_from_slice(b"i\x01bSi\x02hi}");
        let value = parse(&bytes).unwrap();
        assert_eq!(value, serde_json::json!({"a": [1.5, -2.0], "b": "hi"}));
    }

    #[test]
    fn typed_arrays_of_nothing_are_refused_before_they_allocate() {
        // Nulls take no bytes: nested, a small file would cost gigabytes of values.
        let error = parse(b"[$Z#i\x05\x00\x00\x00\x00\x00\x00").unwrap_err();
        assert!(error.contains("typed array of 'Z'"), "{error}");
        let error = parse(b"[$d#I\x03\xe8\x00\x00\x00\x00").unwrap_err();
        assert!(error.contains("does not fit the file"), "{error}");
    }

    #[test]
    fn a_count_larger_than_the_file_is_refused() {
        let error = parse(b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(error.contains("does not fit the file"), "{error}");
        assert!(parse(b"{L\x00\x00").unwrap_err().contains("ends early"));
    }
}
