//! The protobuf wire format, read as far as the ONNX messages need: a message splits into its
//! fields, and a field's bytes are decoded only when asked for. Every length is checked
//! against the bytes left, so a hostile file ends in an error, never in a panic.

/// One field of a protobuf message.
#[derive(Debug)]
pub(super) struct Field<'a> {
    pub number: u64,
    pub value: Value<'a>,
}

#[derive(Debug)]
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A protobuf message split into its fields (not decoded further).
#[derive(Debug)]
pub(super) struct Message<'a> {
    pub fields: Vec<Field<'a>>,
}

impl<'a> Message<'a> {
    pub fn parse(mut bytes: &'a [u8]) -> Result<Message<'a>, String> {
        let mut fields = Vec::new();
        while !bytes.is_empty() {
            let key = read_varint(&mut bytes)?;
            let number = key >> 3;
            let value = match key & 7 {
                0 => Value::Varint(read_varint(&mut bytes)?),
                1 => {
                    take(&mut bytes, 8)?;
                    Value::Fixed64
                }
                2 => {
                    let length = usize::try_from(read_varint(&mut bytes)?)
                        .map_err(|_| "a field longer than memory".to_string())?;
                    Value::Bytes(take(&mut bytes, length)?)
                }
                5 => {
                    let raw = take(&mut bytes, 4)?;
                    Value::Fixed32(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
                }
                wire => return Err(format!("unsupported protobuf wire type {wire}")),
            };
            fields.push(Field { number, value });
        }
        Ok(Message { fields })
    }

    /// The values of a packed repeated varint field.
    pub fn varints(mut bytes: &[u8]) -> Result<Vec<u64>, String> {
        let mut values = Vec::new();
        while !bytes.is_empty() {
            values.push(read_varint(&mut bytes)?);
        }
        Ok(values)
    }

    /// Every value of a repeated varint field, packed or not.
    pub fn repeated_varints(&self, number: u64) -> Result<Vec<u64>, String> {
        let mut values = Vec::new();
        for field in self.fields.iter().filter(|f| f.number == number) {
            match field.value {
                Value::Varint(v) => values.push(v),
                Value::Bytes(packed) => values.extend(Message::varints(packed)?),
                _ => return Err(format!("field {number} is not a varint")),
            }
        }
        Ok(values)
    }

    pub fn bytes(&self, number: u64) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.fields.iter().filter_map(move |f| match f.value {
            Value::Bytes(b) if f.number == number => Some(b),
            _ => None,
        })
    }

    pub fn string(&self, number: u64) -> Option<String> {
        self.bytes(number)
            .next()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn strings(&self, number: u64) -> Vec<String> {
        self.bytes(number)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    pub fn varint(&self, number: u64) -> Option<u64> {
        self.fields.iter().find_map(|f| match f.value {
            Value::Varint(v) if f.number == number => Some(v),
            _ => None,
        })
    }

    pub fn has(&self, number: u64) -> bool {
        self.fields.iter().any(|f| f.number == number)
    }
}

pub(super) fn read_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("truncated protobuf varint")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 10 bytes".to_string())
}

fn take<'a>(bytes: &mut &'a [u8], length: usize) -> Result<&'a [u8], String> {
    if bytes.len() < length {
        return Err("truncated protobuf field".to_string());
    }
    let (head, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_as_protobuf_writes_them() {
        let mut bytes: &[u8] = &[0xac, 0x02, 0x01];
        assert_eq!(read_varint(&mut bytes).unwrap(), 300);
        assert_eq!(bytes, [0x01]);
        assert!(read_varint(&mut &[0x80u8][..]).is_err());
    }

    #[test]
    fn repeated_varints_are_read_packed_and_unpacked() {
        // Field 1 as two single varints (3, 4) and once packed ([5, 300]).
        let bytes = [0x08, 0x03, 0x08, 0x04, 0x0a, 0x03, 0x05, 0xac, 0x02];
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.repeated_varints(1).unwrap(), [3, 4, 5, 300]);
        assert!(message.repeated_varints(2).unwrap().is_empty());
    }
}
