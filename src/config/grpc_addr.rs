//! The gRPC listener's setting: an address, or `off`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where the gRPC server listens: `HOST:PORT` (port 0 for a free port, logged), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcAddr {
    /// No gRPC listener of its own.
    Off,
    /// Listen here.
    At(SocketAddr),
}

impl GrpcAddr {
    /// The address, unless off.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            GrpcAddr::Off => None,
            GrpcAddr::At(addr) => Some(addr),
        }
    }
}

impl Default for GrpcAddr {
    /// 127.0.0.1:8081, the port KServe gives gRPC.
    fn default() -> Self {
        GrpcAddr::At(SocketAddr::from(([127, 0, 0, 1], 8081)))
    }
}

impl FromStr for GrpcAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(GrpcAddr::Off);
        }
        text.parse().map(GrpcAddr::At).map_err(|_| {
            format!("'{text}' is not an address: give HOST:PORT (port 0 for a free one) or off")
        })
    }
}

impl fmt::Display for GrpcAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcAddr::Off => f.write_str("off"),
            GrpcAddr::At(addr) => write!(f, "{addr}"),
        }
    }
}

impl Serialize for GrpcAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GrpcAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_or_an_address() {
        assert_eq!("off".parse::<GrpcAddr>(), Ok(GrpcAddr::Off));
        assert_eq!("OFF".parse::<GrpcAddr>(), Ok(GrpcAddr::Off));
        let at: GrpcAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(at.to_string(), "0.0.0.0:9000");
        assert!(
            "9000"
                .parse::<GrpcAddr>()
                .unwrap_err()
                .contains("HOST:PORT")
        );
        assert_eq!(GrpcAddr::default().to_string(), "127.0.0.1:8081");
    }
}
