//! Server functions of the panel (`POST /api/<name>`), one module per area.
//!
//! Each body is a few lines: take `manager::Services` from context (via `crate::ssr`), check the
//! session, run the shared validation, call the service and map its error into
//! [`crate::AppError`]. Everything else lives in the manager crate, which also checks the
//! administrator's role on every change (the panel runs each request as its administrator).

pub mod admins;
pub mod auth;
pub mod dashboard;
pub mod nodes;
pub mod settings;
pub mod tokens;
pub mod usage;
pub mod users;

pub use admins::*;
pub use auth::*;
pub use dashboard::*;
pub use nodes::*;
pub use settings::*;
pub use tokens::*;
pub use usage::*;
pub use users::*;

use server_fn::codec::Post;
use server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};

/// The panel's server functions send and answer JSON with [`JsonText`] (`POST`, JSON body):
/// the input of those that take it, the output of all.
pub type Json = Post<JsonText>;

/// JSON as `serde_json` writes it, read back as text. The browser bundle reads a resource's
/// server-rendered value and an island's props as text too, so each type has one JSON
/// deserializer in the bundle instead of one per reader (server_fn's own JSON reads bytes).
pub struct JsonText;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: serde::Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: serde::de::DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}
