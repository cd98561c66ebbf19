//! Checking credentials, with no HTTP in it: who a credential is ([`Authenticator`], argon2id
//! hashes from the keys file, checked once and then cached under the credential's SHA-256),
//! why one is refused ([`Refusal`]), and the per-key rate limit ([`RateLimiter`]).

use super::keys::{self, ApiKey, BasicUser, KeysFile, Role};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Cached successful checks; cleared when full, so a flood of keys cannot grow it forever.
const CACHE_LIMIT: usize = 10_000;

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's or user's name.
    pub name: Arc<str>,
    /// What it may do.
    pub role: Role,
}

/// Why a credential was refused (for the log and the metrics; the client hears only 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credential at all.
    Missing,
    /// A header that is not a credential.
    Malformed,
    /// No key with that id.
    UnknownKey,
    /// The key id exists, the secret does not match.
    WrongKey,
    /// No such user.
    UnknownUser,
    /// The user exists, the password does not match.
    WrongPassword,
    /// Too many checks at once: try again shortly.
    Busy,
}

impl Refusal {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::UnknownKey => "unknown_key",
            Refusal::WrongKey => "wrong_key",
            Refusal::UnknownUser => "unknown_user",
            Refusal::WrongPassword => "wrong_password",
            Refusal::Busy => "busy",
        }
    }
}

/// A credential as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key.
    Key(String),
    /// A user name and password.
    Basic(String, String),
}

impl Credential {
    /// The form kept in the sign-in cookie.
    pub fn to_cookie_value(&self) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        match self {
            Credential::Key(key) => format!("k.{}", engine.encode(key)),
            Credential::Basic(user, password) => {
                format!("b.{}", engine.encode(format!("{user}:{password}")))
            }
        }
    }

    pub(super) fn from_cookie_value(value: &str) -> Option<Credential> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (kind, data) = value.split_once('.')?;
        let text = String::from_utf8(engine.decode(data).ok()?).ok()?;
        match kind {
            "k" => Some(Credential::Key(text)),
            "b" => {
                let (user, password) = text.split_once(':')?;
                Some(Credential::Basic(user.to_string(), password.to_string()))
            }
            _ => None,
        }
    }

    fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match self {
            Credential::Key(key) => {
                hasher.update(b"key\0");
                hasher.update(key.as_bytes());
            }
            Credential::Basic(user, password) => {
                hasher.update(b"basic\0");
                hasher.update(user.as_bytes());
                hasher.update(b"\0");
                hasher.update(password.as_bytes());
            }
        }
        hasher.finalize().into()
    }
}

/// Checks credentials against the keys file.
pub struct Authenticator {
    keys: HashMap<String, ApiKey>,
    users: HashMap<String, BasicUser>,
    has_users: bool,
    pub(super) cache: RwLock<HashMap<[u8; 32], Principal>>,
    /// argon2 costs about 20 ms and 19 MiB; at most two run at once, whatever comes in.
    hashing: tokio::sync::Semaphore,
    /// Checked for unknown users, so a wrong user name takes as long as a wrong password.
    decoy_hash: String,
}

impl Authenticator {
    /// An authenticator for these keys and users.
    pub fn new(file: &KeysFile) -> Authenticator {
        Authenticator {
            keys: file
                .keys
                .iter()
                .map(|k| (k.id.clone(), k.clone()))
                .collect(),
            users: file
                .users
                .iter()
                .map(|u| (u.name.clone(), u.clone()))
                .collect(),
            has_users: !file.users.is_empty(),
            cache: RwLock::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(2),
            decoy_hash: keys::hash_secret("decoy password").unwrap_or_default(),
        }
    }

    /// Whether HTTP Basic users exist (then 401 offers the Basic scheme too).
    pub fn has_users(&self) -> bool {
        self.has_users
    }

    /// Checks a secret; `Err` when the hashing slots stayed taken for 2 s (a flood of wrong
    /// credentials must not queue without end, nor hold every request slot).
    async fn verify(&self, secret: String, hash: String) -> Result<bool, Refusal> {
        let permit =
            tokio::time::timeout(std::time::Duration::from_secs(2), self.hashing.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return Err(Refusal::Busy);
        };
        Ok(
            tokio::task::spawn_blocking(move || keys::verify_secret(&secret, &hash))
                .await
                .unwrap_or(false),
        )
    }

    /// Who a credential belongs to.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, Refusal> {
        let digest = credential.digest();
        if let Some(known) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
        {
            return Ok(known.clone());
        }
        let principal = match credential {
            Credential::Key(key) => {
                let entry = keys::key_id(key)
                    .and_then(|id| self.keys.get(id))
                    .ok_or(Refusal::UnknownKey)?;
                if !self.verify(key.clone(), entry.hash.clone()).await? {
                    return Err(Refusal::WrongKey);
                }
                Principal {
                    name: entry.name.as_str().into(),
                    role: entry.role,
                }
            }
            Credential::Basic(user, password) => match self.users.get(user) {
                Some(entry) => {
                    if !self.verify(password.clone(), entry.hash.clone()).await? {
                        return Err(Refusal::WrongPassword);
                    }
                    Principal {
                        name: entry.name.as_str().into(),
                        role: entry.role,
                    }
                }
                None => {
                    self.verify(password.clone(), self.decoy_hash.clone())
                        .await?;
                    return Err(Refusal::UnknownUser);
                }
            },
        };
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(digest, principal.clone());
        Ok(principal)
    }
}

/// A token bucket per key or user: `rate` requests a second on average, bursts of `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Arc<str>, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter; `rate` must be above 0.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `name`, or says how many seconds until one is there.
    pub fn check(&self, name: &Arc<str>) -> Result<(), u32> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(name.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.rate;
            Err(wait.ceil().max(1.0) as u32)
        }
    }
}

/// The auth state of a server.
pub struct AuthState {
    /// Checks credentials; replaced whole when the keys file changes.
    authenticator: arc_swap::ArcSwap<Authenticator>,
    /// Whether /metrics needs a credential.
    pub metrics_auth: bool,
    /// The per-key rate limit, when set.
    pub rate_limiter: Option<RateLimiter>,
}

impl AuthState {
    /// Auth over these keys and users.
    pub fn new(keys: &KeysFile, metrics_auth: bool, rate_limiter: Option<RateLimiter>) -> Self {
        AuthState {
            authenticator: arc_swap::ArcSwap::from_pointee(Authenticator::new(keys)),
            metrics_auth,
            rate_limiter,
        }
    }

    /// The current authenticator (a snapshot: a request keeps the one it started with).
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.authenticator.load_full()
    }

    /// Puts a new authenticator in force (the keys file changed).
    pub fn replace_authenticator(&self, authenticator: Authenticator) {
        self.authenticator.store(Arc::new(authenticator));
    }
}
