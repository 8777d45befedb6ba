//! Shadowsocks cipher methods we support and the key rules that go with them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Shadowsocks method: classic AEAD (password-derived key) or SS-2022 (base64 PSK of fixed size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    #[serde(rename = "chacha20-ietf-poly1305")]
    Chacha20IetfPoly1305,
    #[serde(rename = "2022-blake3-aes-128-gcm")]
    Blake3Aes128Gcm,
    #[serde(rename = "2022-blake3-aes-256-gcm")]
    Blake3Aes256Gcm,
}

/// Why a key does not fit its method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    #[error("unsupported method `{0}`")]
    Unsupported(String),
    #[error("password must not be empty")]
    EmptyPassword,
    #[error("an SS-2022 key must be standard base64")]
    NotBase64,
    #[error("an SS-2022 key for {method} must be {expected} bytes, got {actual}")]
    KeyLength {
        method: Method,
        expected: usize,
        actual: usize,
    },
}

impl Method {
    /// Every supported method, for forms and docs.
    pub const ALL: [Method; 5] = [
        Method::Aes128Gcm,
        Method::Aes256Gcm,
        Method::Chacha20IetfPoly1305,
        Method::Blake3Aes128Gcm,
        Method::Blake3Aes256Gcm,
    ];

    /// The method's name as it appears in configs and links.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Aes128Gcm => "aes-128-gcm",
            Method::Aes256Gcm => "aes-256-gcm",
            Method::Chacha20IetfPoly1305 => "chacha20-ietf-poly1305",
            Method::Blake3Aes128Gcm => "2022-blake3-aes-128-gcm",
            Method::Blake3Aes256Gcm => "2022-blake3-aes-256-gcm",
        }
    }

    /// SS-2022 methods take a raw base64 PSK; classic ones derive their key from a password.
    pub fn is_2022(self) -> bool {
        matches!(self, Method::Blake3Aes128Gcm | Method::Blake3Aes256Gcm)
    }

    /// Key size in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Method::Aes128Gcm | Method::Blake3Aes128Gcm => 16,
            Method::Aes256Gcm | Method::Chacha20IetfPoly1305 | Method::Blake3Aes256Gcm => 32,
        }
    }

    /// Checks that `password` is usable with this method (an SS-2022 key: base64 of `key_len` bytes).
    pub fn check_password(self, password: &str) -> Result<(), MethodError> {
        if password.is_empty() {
            return Err(MethodError::EmptyPassword);
        }
        if self.is_2022() {
            let key = base64::engine::general_purpose::STANDARD
                .decode(password)
                .map_err(|_| MethodError::NotBase64)?;
            if key.len() != self.key_len() {
                return Err(MethodError::KeyLength {
                    method: self,
                    expected: self.key_len(),
                    actual: key.len(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = MethodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| MethodError::Unsupported(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
        }
        assert!("rc4-md5".parse::<Method>().is_err());
    }

    #[test]
    fn ss2022_keys_are_sized_by_method() {
        let k16 = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let k32 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(Method::Blake3Aes128Gcm.check_password(&k16), Ok(()));
        assert_eq!(
            Method::Blake3Aes128Gcm.check_password(&k32),
            Err(MethodError::KeyLength {
                method: Method::Blake3Aes128Gcm,
                expected: 16,
                actual: 32
            })
        );
        assert_eq!(
            Method::Blake3Aes256Gcm.check_password("not base64!"),
            Err(MethodError::NotBase64)
        );
        assert_eq!(Method::Aes256Gcm.check_password("any password"), Ok(()));
        assert_eq!(
            Method::Aes256Gcm.check_password(""),
            Err(MethodError::EmptyPassword)
        );
    }
}
