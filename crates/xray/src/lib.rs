//! The Xray-format JSON configuration that Arch generates, pushes and runs.
//!
//! This crate owns the typed model of the subset we emit (Shadowsocks inbounds, freedom / blackhole /
//! shadowsocks outbounds, field routing with balancers, reverse bridges and portals, stats/policy and
//! metadata), builders for each piece, validation that names the JSON path of a bad field, and the
//! config version (a hash of the canonical JSON). It is wasm-safe and knows nothing of databases, HTTP
//! or sockets: the manager writes these configs, the node and the engine read them.

pub mod api;
pub mod cidr;
mod method;
mod model;
mod validate;

pub use method::{Method, MethodError};
pub use model::*;
pub use validate::{ValidationError, DOMAIN_STRATEGIES};

/// Errors from [`Config::from_json`]: either the JSON does not match the model, or it does but
/// fails validation. Both carry the JSON path of the offending field.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON of the expected shape.
    #[error("invalid JSON at `{path}`: {message}")]
    Syntax { path: String, message: String },
    /// The body parsed but is not a config we can run.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl ParseError {
    /// JSON path of the bad field (`inbounds[1].port`), or empty when it is the document itself.
    pub fn path(&self) -> &str {
        match self {
            ParseError::Syntax { path, .. } => path,
            ParseError::Invalid(e) => &e.path,
        }
    }
}

impl Config {
    /// Parses and validates a config, reporting the JSON path of the first problem.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ParseError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ParseError::Syntax {
                path: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Canonical JSON: field order is the struct order, so equal configs give equal bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings, numbers and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The version of a config: the first 16 hex digits of the SHA-256 of its canonical JSON.
    pub fn version(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.to_canonical_json());
        hex::encode(&digest[..8])
    }
}
