//! The servers a user can use ([`entries`]) and their `ss://` links (SIP002, by
//! `subscription::sip002`): one per enabled mode. Direct, relay and reverse point at the
//! manager's host; remote points at each node's host. QR codes of links and URLs ([`qr_svg`]).

use crate::entity::{node, settings, user};
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

/// One server a user may use, before it is named for a particular output: the shared source of
/// [`for_user`] (the admin's links) and of subscriptions (`services::subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: Mode,
    /// For remote entries, the node it points at.
    pub node_id: Option<i64>,
    /// Named as subscriptions show it (`Arch · relay`, `node-2 · remote`), with a [`stable_id`]
    /// seeded by user id, mode and node id (nothing secret).
    ///
    /// [`stable_id`]: subscription::stable_id
    pub server: subscription::Server,
}

/// The subscription name of a manager-side mode (`Arch · direct`).
fn mode_name(mode: Mode) -> String {
    format!("Arch · {mode}")
}

/// Every server `u` can use by the settings `s`: one per enabled manager-side mode (direct,
/// relay, reverse on `s.host`), then one per node in `nodes` for remote mode (on the node's
/// host). Reverse carries no UDP. The caller chooses the nodes (every node for the admin's
/// links, healthy ones for subscriptions) and whether a disabled user gets any.
pub fn entries(u: &user::Model, s: &settings::Model, nodes: &[node::Model]) -> Vec<Entry> {
    let server = |mode: Mode, node: Option<i64>, name: String, host: &str, port: u16| Entry {
        mode,
        node_id: node,
        server: subscription::Server {
            id: subscription::stable_id(&format!("arch/{}/{mode}/{}", u.id, node.unwrap_or(0))),
            name,
            host: host.to_owned(),
            port,
            method: u.method.clone(),
            password: u.password.clone(),
            udp: mode != Mode::Reverse,
        },
    };
    let mut out = Vec::new();
    for (mode, port) in [
        (Mode::Direct, s.ss_direct_port),
        (Mode::Relay, s.ss_relay_port),
        (Mode::Reverse, s.ss_reverse_port),
    ] {
        if let Ok(port @ 1..) = u16::try_from(port) {
            out.push(server(mode, None, mode_name(mode), &s.host, port));
        }
    }
    if let Ok(port @ 1..) = u16::try_from(s.ss_remote_port) {
        for n in nodes {
            let name = format!("{} · remote", n.name);
            out.push(server(Mode::Remote, Some(n.id), name, &n.host, port));
        }
    }
    out
}

/// The user's links for every enabled mode and every node, named `{user}-{mode}` and
/// `{user}-remote-{node id}` (the admin's view; subscriptions name them for the end user).
pub fn for_user(u: &user::Model, s: &settings::Model, nodes: &[node::Model]) -> Vec<Link> {
    entries(u, s, nodes)
        .into_iter()
        .map(|e| {
            let tag = match e.node_id {
                Some(id) => format!("{}-remote-{id}", u.name),
                None => format!("{}-{}", u.name, e.mode),
            };
            let srv = e.server;
            Link {
                mode: e.mode,
                node_id: e.node_id,
                url: subscription::sip002(&srv.method, &srv.password, &srv.host, srv.port, &tag),
            }
        })
        .collect()
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
}
