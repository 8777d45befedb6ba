//! `ss://` links (SIP002) for a user: one per enabled mode. Direct, relay and reverse point at the
//! manager's host; remote points at each node's host.

use crate::entity::{node, settings, user};
use base64::Engine as _;
use rules::Mode;
use serde::Serialize;

/// One client link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub mode: Mode,
    /// For remote links, the node it points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    pub url: String,
}

fn host_part(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A SIP002 URL: classic methods base64url-encode `method:password`; SS-2022 percent-encodes it.
pub fn sip002(method: &str, password: &str, host: &str, port: u16, tag: &str) -> String {
    use percent_encoding::utf8_percent_encode;
    let userinfo = if method.starts_with("2022-") {
        format!(
            "{}:{}",
            utf8_percent_encode(method, COMPONENT),
            utf8_percent_encode(password, COMPONENT)
        )
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{method}:{password}"))
    };
    let fragment = utf8_percent_encode(tag, COMPONENT);
    format!("ss://{userinfo}@{}:{port}#{fragment}", host_part(host))
}

/// The user's links for every enabled mode.
pub fn for_user(u: &user::Model, s: &settings::Model, nodes: &[node::Model]) -> Vec<Link> {
    let mut out = Vec::new();
    for (mode, port) in [
        (Mode::Direct, s.ss_direct_port),
        (Mode::Relay, s.ss_relay_port),
        (Mode::Reverse, s.ss_reverse_port),
    ] {
        if let Ok(port @ 1..) = u16::try_from(port) {
            out.push(Link {
                mode,
                node_id: None,
                url: sip002(
                    &u.method,
                    &u.password,
                    &s.host,
                    port,
                    &format!("{}-{mode}", u.name),
                ),
            });
        }
    }
    if let Ok(port @ 1..) = u16::try_from(s.ss_remote_port) {
        for n in nodes {
            out.push(Link {
                mode: Mode::Remote,
                node_id: Some(n.id),
                url: sip002(
                    &u.method,
                    &u.password,
                    &n.host,
                    port,
                    &format!("{}-remote-{}", u.name, n.id),
                ),
            });
        }
    }
    out
}

/// `url` as a QR code: an inline `<svg>` element (no XML prolog), scaled by its `viewBox`, with
/// a quiet zone. `None` when the text is too long for a QR code.
pub fn qr_svg(url: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_are_inline_svg() {
        let svg =
            qr_svg("ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwdw@203.0.113.1:8388#a").expect("fits");
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("<path fill=\"#000\" d=\"M"));
        assert_eq!(qr_svg(&"x".repeat(8000)), None);
    }

    #[test]
    fn sip002_forms() {
        assert_eq!(
            sip002(
                "chacha20-ietf-poly1305",
                "pw",
                "203.0.113.1",
                8388,
                "alice direct"
            ),
            "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwdw@203.0.113.1:8388#alice%20direct"
        );
        assert_eq!(
            sip002("2022-blake3-aes-128-gcm", "a+b/c=", "::1", 9000, "x-y"),
            "ss://2022-blake3-aes-128-gcm:a%2Bb%2Fc%3D@[::1]:9000#x-y"
        );
    }
}
