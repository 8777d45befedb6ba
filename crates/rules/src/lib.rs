//! What the manager and its panel must agree on, in one wasm-safe place: the rules for input
//! values ([`input`]: names, hosts, ports, quotas, tokens, proxy URLs, traffic ratio, private
//! networks), the vocabulary stored and sent on the wire ([`kinds`]: modes, disable reasons, roles) and
//! the live events of `/events` ([`event`]).
//!
//! The manager's services enforce these rules (a refusal becomes a 400 naming the field); the
//! panel runs the same functions in the browser before a request is sent, so both give the same
//! message. Nothing here does I/O; the `sea-orm` feature (manager only) adds column derives to the
//! enums, and everything else compiles to wasm32.

pub mod event;
pub mod input;
pub mod kinds;

pub use event::Event;
pub use input::Invalid;
pub use kinds::{DisableReason, Mode, Permission, ResetStrategy, Role};
