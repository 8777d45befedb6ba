//! Form validation in the browser (instant messages before a request is sent) and in the server
//! functions, by the rules the manager's services enforce (`rules::input`), so the panel shows
//! the message the REST API gives.
//!
//! Each function returns the parsed value or an [`AppError::Invalid`] naming the field, with the
//! field names the manager uses, so client and server messages land next to the same input. Only
//! what the panel adds lives here: reading text fields and the password confirmation.

use crate::error::AppError;
use rules::input;

/// Minimum administrator password length.
pub const MIN_PASSWORD_CHARS: usize = input::MIN_PASSWORD_CHARS;

/// An administrator user name.
pub fn username(value: &str) -> Result<String, AppError> {
    Ok(input::admin_name(value)?)
}

/// A new administrator password and its confirmation.
pub fn new_password(password: &str, confirm: &str) -> Result<(), AppError> {
    input::password(password)?;
    if password != confirm {
        return Err(AppError::invalid("confirm", "The passwords do not match."));
    }
    Ok(())
}

/// A proxy user's name.
pub fn user_name(value: &str) -> Result<String, AppError> {
    Ok(input::user_name(value)?)
}

/// A quota typed in GB (0 = unlimited), returned in bytes.
pub fn quota_gb(value: &str) -> Result<i64, AppError> {
    Ok(input::quota_gb(value)?)
}

/// A quota in bytes as submitted to the server.
pub fn quota_bytes(value: i64) -> Result<i64, AppError> {
    Ok(input::quota_bytes(value)?)
}

/// A host name or IP address, in its canonical spelling.
pub fn host(field: &str, value: &str) -> Result<String, AppError> {
    Ok(input::host(field, value)?)
}

/// A TCP port typed into a field; `allow_zero` for the mode ports, where 0 turns the mode off.
pub fn port(field: &str, value: &str, allow_zero: bool) -> Result<u16, AppError> {
    Ok(input::port_text(field, value, allow_zero)?)
}

/// A node API token: empty (generate one, or keep the current one) or the token rule.
pub fn node_token(value: &str) -> Result<String, AppError> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    Ok(input::node_token(value)?)
}

/// The fallback proxy URL: empty, or `scheme://host:port`.
pub fn proxy_url(value: &str) -> Result<String, AppError> {
    Ok(input::proxy_url(value)?)
}

/// The traffic ratio typed into a field.
pub fn traffic_ratio(value: &str) -> Result<f64, AppError> {
    Ok(input::traffic_ratio_text(value)?)
}

/// Private networks open to user traffic: CIDRs separated by commas, spaces or new lines.
pub fn networks(value: &str) -> Result<Vec<String>, AppError> {
    Ok(input::networks_text(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_manager_messages_as_sentences() {
        assert_eq!(
            host("host", "a..b"),
            Err(AppError::invalid(
                "host",
                "Must be a domain name or an IP address."
            ))
        );
        assert_eq!(host("host", " [::1] "), Ok("::1".to_owned()));
        assert_eq!(
            user_name("two words"),
            Err(AppError::invalid(
                "name",
                "Must be 1–64 letters, digits or _ - . @ (no spaces)."
            ))
        );
        assert_eq!(
            quota_gb("-2"),
            Err(AppError::invalid(
                "quota_bytes",
                "Must be 0 (unlimited) or more."
            ))
        );
        assert_eq!(
            port("http_port", "0", false),
            Err(AppError::invalid(
                "http_port",
                "Must be between 1 and 65535."
            ))
        );
        assert_eq!(node_token("  "), Ok(String::new()));
        assert_eq!(
            node_token("short"),
            Err(AppError::invalid(
                "http_token",
                "Must be 16–256 printable characters without spaces."
            ))
        );
    }

    #[test]
    fn passwords() {
        assert_eq!(
            new_password("short", "short"),
            Err(AppError::invalid(
                "password",
                "Must be at least 12 characters."
            ))
        );
        assert_eq!(
            new_password("long-enough-pw", "other-password"),
            Err(AppError::invalid("confirm", "The passwords do not match."))
        );
        assert_eq!(new_password("long-enough-pw", "long-enough-pw"), Ok(()));
    }
}
