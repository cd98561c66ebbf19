//! The keys file: API keys and HTTP Basic users, kept only as argon2id hashes.
//!
//! An API key reads `mls_<id>_<secret>`: the id (8 hex digits) names the entry, so a request
//! costs one hash check, not one per key; the secret is 256 random bits. `mlserve keys create`
//! prints a new key once; only its hash is written.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a key or user may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Predict, read models, send feedback, use the web UI.
    Predict,
    /// Everything: also reload models and read the prediction log.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Predict => "predict",
            Role::Admin => "admin",
        }
    }
}

/// One API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The public part of the key, in the key itself.
    pub id: String,
    /// Who or what uses it (shown in logs and the prediction log).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// argon2id hash of the whole key.
    pub hash: String,
    /// When it was made, RFC 3339.
    pub created_at: String,
}

/// One HTTP Basic user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    /// User name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// argon2id hash of the password.
    pub hash: String,
    /// When the user was added, RFC 3339.
    pub created_at: String,
}

/// The keys file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// API keys.
    #[serde(default)]
    pub keys: Vec<ApiKey>,
    /// HTTP Basic users.
    #[serde(default)]
    pub users: Vec<BasicUser>,
}

/// Errors with the keys file.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid keys file.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A name is taken, empty or not plain.
    #[error("{0}")]
    Name(String),
    /// Hashing failed.
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}

/// The prefix of every API key.
const PREFIX: &str = "mls_";

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Hashes a secret with argon2id (OWASP's parameters: 19 MiB, 2 passes) and a random salt.
pub fn hash_secret(secret: &str) -> Result<String, KeysError> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| KeysError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| KeysError::Hash(e.to_string()))
}

/// Whether a secret matches a stored hash (argon2's comparison is constant-time).
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The id part of a key, when it has the key's shape.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 64).then_some(id)
}

fn check_name(name: &str) -> Result<(), KeysError> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if plain {
        Ok(())
    } else {
        Err(KeysError::Name(format!(
            "'{name}' is not a usable name: use 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl KeysFile {
    /// Reads a keys file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<KeysFile, KeysError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KeysFile::default());
            }
            Err(source) => {
                return Err(KeysError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: KeysFile = toml::from_str(&text).map_err(|error| KeysError::Invalid {
            path: path.to_path_buf(),
            message: error.to_string().trim().replace('\n', " "),
        })?;
        for key in &file.keys {
            if key.id.len() != 8 || PasswordHash::new(&key.hash).is_err() {
                return Err(KeysError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("key '{}' has a malformed id or hash", key.name),
                });
            }
        }
        for user in &file.users {
            if PasswordHash::new(&user.hash).is_err() {
                return Err(KeysError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("user '{}' has a malformed hash", user.name),
                });
            }
        }
        Ok(file)
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeysError> {
        let io = |source| KeysError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = format!(
            "# mlserve API keys and users: argon2id hashes only. Manage with `mlserve keys`.\n{}",
            toml::to_string(self).map_err(|e| KeysError::Hash(e.to_string()))?
        );
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        let staging = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Readable by its owner only from the first byte, not after a chmod.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let _ = std::fs::remove_file(&staging);
        let mut file = options.open(&staging).map_err(io)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&staging, path).map_err(io)
    }

    fn name_taken(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k.name == name) || self.users.iter().any(|u| u.name == name)
    }

    /// Adds a new API key and returns it: the only time the key is seen whole.
    pub fn create_key(&mut self, name: &str, role: Role) -> Result<String, KeysError> {
        check_name(name)?;
        if self.name_taken(name) {
            return Err(KeysError::Name(format!(
                "the name '{name}' is taken; revoke it first or choose another"
            )));
        }
        let id = loop {
            let id = random_hex(4);
            if !self.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        let key = format!("{PREFIX}{id}_{}", random_hex(32));
        self.keys.push(ApiKey {
            id,
            name: name.to_string(),
            role,
            hash: hash_secret(&key)?,
            created_at: now(),
        });
        Ok(key)
    }

    /// Adds an HTTP Basic user with this password.
    pub fn add_user(&mut self, name: &str, role: Role, password: &str) -> Result<(), KeysError> {
        check_name(name)?;
        if self.name_taken(name) {
            return Err(KeysError::Name(format!("the name '{name}' is taken")));
        }
        if password.chars().count() < 12 {
            return Err(KeysError::Name(
                "the password is too short: use at least 12 characters".to_string(),
            ));
        }
        self.users.push(BasicUser {
            name: name.to_string(),
            role,
            hash: hash_secret(password)?,
            created_at: now(),
        });
        Ok(())
    }

    /// Removes the key or user with this name; false if there is none.
    pub fn revoke(&mut self, name: &str) -> bool {
        let before = self.keys.len() + self.users.len();
        self.keys.retain(|k| k.name != name);
        self.users.retain(|u| u.name != name);
        before != self.keys.len() + self.users.len()
    }

    /// Whether it holds no key and no user.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_verifies_and_others_do_not() {
        let mut file = KeysFile::default();
        let key = file.create_key("ci", Role::Predict).unwrap();
        let id = key_id(&key).unwrap();
        assert_eq!(id, file.keys[0].id);
        assert!(verify_secret(&key, &file.keys[0].hash));
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('0') { '1' } else { '0' });
        assert!(!verify_secret(&wrong, &file.keys[0].hash));
        assert!(!file.keys[0].hash.contains(&key[8..]));
        assert!(
            file.create_key("ci", Role::Admin).is_err(),
            "names are unique"
        );
        assert!(file.create_key("has space", Role::Admin).is_err());
    }

    #[test]
    fn keys_files_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let mut file = KeysFile::load(&path).unwrap();
        assert!(file.is_empty());
        file.create_key("ops", Role::Admin).unwrap();
        file.add_user("alice", Role::Predict, "correct horse battery")
            .unwrap();
        assert!(file.add_user("bob", Role::Predict, "short").is_err());
        file.save(&path).unwrap();
        assert_eq!(KeysFile::load(&path).unwrap(), file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(file.revoke("alice"));
        assert!(!file.revoke("alice"));
        std::fs::write(&path, "[[keys]]\nid = \"x\"\nname = \"a\"\nrole = \"admin\"\nhash = \"h\"\ncreated_at = \"t\"\n").unwrap();
        assert!(KeysFile::load(&path).is_err());
    }

    #[test]
    fn only_well_formed_keys_have_an_id() {
        assert_eq!(
            key_id(&format!("mls_0123abcd_{}", "f".repeat(64))),
            Some("0123abcd")
        );
        assert_eq!(key_id("mls_0123abcd_short"), None);
        assert_eq!(key_id("Bearer x"), None);
    }
}
