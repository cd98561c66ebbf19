//! What the log keeps of a row's inputs. The operator may leave features out of the log
//! (`prediction_log_exclude_features`) or keep a keyed hash of them instead of their value
//! (`prediction_log_hash_features`): HMAC-SHA-256 (RFC 2104, FIPS 180-4) under a secret key,
//! of the feature's name and the value's text, cut to 128 bits and written as 32 hex digits.
//! Equal values of a feature keep equal hashes while the key stays, so they can still be
//! counted and joined, but not read back. Drift is not computed for either kind.

use serde::{Deserialize, Serialize};

/// How a feature is kept in the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    /// Its value, exactly.
    #[default]
    Value,
    /// Nothing: the feature is left out of logged rows.
    Excluded,
    /// A keyed hash of its value, as text.
    Hashed,
}

impl Kept {
    /// Whether this is [`Kept::Value`] (for serde's `skip_serializing_if`).
    pub fn is_value(&self) -> bool {
        *self == Kept::Value
    }
}

/// The operator's choice of what the log keeps of inputs.
#[derive(Debug, Clone, Default)]
pub struct InputPolicy {
    exclude: Vec<String>,
    hash: Vec<String>,
    key: Option<ring::hmac::Key>,
}

impl InputPolicy {
    /// Leaves out `exclude` and hashes `hash` under `key` (at least 16 characters when `hash`
    /// is not empty; the settings check it).
    pub fn new(exclude: &[String], hash: &[String], key: &str) -> InputPolicy {
        InputPolicy {
            exclude: exclude.to_vec(),
            hash: hash.to_vec(),
            key: (!hash.is_empty())
                .then(|| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes())),
        }
    }

    /// Whether every feature is kept as its value (the default).
    pub fn keeps_everything(&self) -> bool {
        self.exclude.is_empty() && self.hash.is_empty()
    }

    /// How the feature named `name` is kept.
    pub fn kept(&self, name: &str) -> Kept {
        if self.exclude.iter().any(|f| f == name) {
            Kept::Excluded
        } else if self.key.is_some() && self.hash.iter().any(|f| f == name) {
            Kept::Hashed
        } else {
            Kept::Value
        }
    }

    /// The keyed hash of a value (given as text) of the feature named `name`.
    pub fn hash(&self, name: &str, value: &str) -> String {
        let Some(key) = &self.key else {
            return String::new();
        };
        let mut context = ring::hmac::Context::with_key(key);
        context.update(name.as_bytes());
        context.update(&[0]);
        context.update(value.as_bytes());
        let tag = context.sign();
        tag.as_ref()
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_per_feature_and_stable() {
        let names = ["ssn".to_string()];
        let policy = InputPolicy::new(&[], &names, "a key of sixteen+ chars");
        let other = InputPolicy::new(&[], &names, "another key, just as long");
        let hash = policy.hash("ssn", "123-45-6789");
        assert_eq!(hash.len(), 32);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, policy.hash("ssn", "123-45-6789"));
        assert_ne!(hash, policy.hash("ssn", "123-45-6780"));
        assert_ne!(hash, policy.hash("zip", "123-45-6789"));
        assert_ne!(hash, other.hash("ssn", "123-45-6789"));
        // Python's hmac.new(key, b"ssn\x00123-45-6789", hashlib.sha256).hexdigest()[:32]
        assert_eq!(hash, "400c80c99e5fdda6f34c92f99898faed");
    }

    #[test]
    fn features_are_kept_as_chosen() {
        let policy = InputPolicy::new(&["name".into()], &["ssn".into()], "0123456789abcdef");
        assert_eq!(policy.kept("name"), Kept::Excluded);
        assert_eq!(policy.kept("ssn"), Kept::Hashed);
        assert_eq!(policy.kept("age"), Kept::Value);
        assert!(!policy.keeps_everything());
        assert!(InputPolicy::default().keeps_everything());
    }
}
