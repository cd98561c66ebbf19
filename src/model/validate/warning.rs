//! A value outside its feature's training range: accepted, and said so in the answer. Kept as
//! numbers and put in words only when an answer shows it (the native API and the web form do;
//! the protocols have no place for it), since formatting floats cost a 1,000-row request more
//! than validating it.

use serde::{Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// Which side of the training range a value fell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Below the training minimum.
    Below(f64),
    /// Above the training maximum.
    Above(f64),
}

/// A value outside its feature's training range.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeWarning {
    /// The feature's name.
    pub feature: Arc<str>,
    /// The value given.
    pub value: f64,
    /// The bound it crossed.
    pub bound: Bound,
}

impl fmt::Display for RangeWarning {
    /// "x = 11 is above the training maximum 10".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = super::readable(self.value);
        match self.bound {
            Bound::Below(min) => write!(
                f,
                "{} = {value} is below the training minimum {min}",
                self.feature
            ),
            Bound::Above(max) => write!(
                f,
                "{} = {value} is above the training maximum {max}",
                self.feature
            ),
        }
    }
}

impl Serialize for RangeWarning {
    /// As its sentence.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
