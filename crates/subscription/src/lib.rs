//! What an end user's client app reads from Arch: a user's servers as SIP002 `ss://` links
//! ([`sip002`]), and the subscription documents built from them ([`render`]):
//!
//! | [`Format`]  | Body | Read by |
//! |-------------|------|---------|
//! | `Base64`    | standard base64 of the `ss://` links, one per line | v2rayN/v2rayNG, Shadowrocket, NekoBox, Hiddify |
//! | `Sip008`    | SIP008 JSON (`version`, `servers[]`, `bytes_used`, `bytes_remaining`) | shadowsocks-android, Outline-style clients |
//! | `Clash`     | Clash / mihomo YAML: `proxies`, a `select` and a `url-test` group, `MATCH` rule | Clash Verge, ClashX, mihomo, Stash |
//! | `SingBox`   | a complete sing-box profile: tun + mixed inbounds, `shadowsocks` outbounds, `selector` + `urltest` | sing-box (SFA/SFI/SFM), Hiddify |
//!
//! [`choose`] picks the format of a request (`?format=` first, then the `User-Agent`, a browser
//! gets the profile page), [`headers`] gives the headers clients read (`subscription-userinfo`,
//! `profile-update-interval`, `content-disposition`, …) and [`import_links`] the one-tap import
//! URLs of the common apps. Everything here is a pure function of its input: the manager decides
//! which servers a user may use and serves the result.

mod formats;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub use formats::render;

/// One server a user can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Stable across fetches (SIP008 clients merge by it); see [`stable_id`].
    pub id: String,
    /// Shown in the client (`Arch · relay`, `node-2 · remote`); made unique per document.
    pub name: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Shadowsocks method, as Arch and the clients spell it (`chacha20-ietf-poly1305`, `2022-blake3-aes-128-gcm`).
    pub method: String,
    /// The password as the client must send it (for SS-2022 multi-user: `server-key:user-key`).
    pub password: String,
    /// Whether UDP is carried by this server.
    pub udp: bool,
}

/// What the user has used of their allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes counted so far (Arch counts both directions together).
    pub used: u64,
    /// The quota in bytes; `None` = unlimited.
    pub quota: Option<u64>,
    /// When access ends, unix milliseconds; `None` = never.
    pub expire_at_ms: Option<i64>,
}

/// A user's subscription: what every format renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name in the client app (also the download file name).
    pub title: String,
    /// Servers usable now; empty for a disabled user (a valid, empty document).
    pub servers: Vec<Server>,
    pub usage: Usage,
    /// How often the client should refresh, in hours.
    pub update_interval_hours: u32,
    /// The user's profile page, advertised to clients that show it.
    pub page_url: Option<String>,
}

/// A subscription document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Base64,
    Sip008,
    Clash,
    SingBox,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 4] = [
        Format::Base64,
        Format::Sip008,
        Format::Clash,
        Format::SingBox,
    ];

    /// The `?format=` value naming this format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Base64 => "base64",
            Format::Sip008 => "sip008",
            Format::Clash => "clash",
            Format::SingBox => "sing-box",
        }
    }

    /// The format a `?format=` value names (case-insensitive; `mihomo` = `clash`, `singbox` =
    /// `sing-box`, `v2ray` = `base64`).
    pub fn parse(value: &str) -> Option<Format> {
        match value.trim().to_ascii_lowercase().as_str() {
            "base64" | "v2ray" | "links" => Some(Format::Base64),
            "sip008" => Some(Format::Sip008),
            "clash" | "mihomo" => Some(Format::Clash),
            "sing-box" | "singbox" => Some(Format::SingBox),
            _ => None,
        }
    }

    /// `Content-Type` of the document.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Base64 => "text/plain; charset=utf-8",
            Format::Sip008 | Format::SingBox => "application/json",
            Format::Clash => "text/yaml; charset=utf-8",
        }
    }

    /// File name extension of the download.
    fn extension(self) -> &'static str {
        match self {
            Format::Base64 => "txt",
            Format::Sip008 | Format::SingBox => "json",
            Format::Clash => "yaml",
        }
    }
}

/// What to answer a subscription request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Document(Format),
    /// A browser: the HTML profile page.
    Page,
}

/// `?format=` named no known format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: use base64, sip008, clash or sing-box")]
pub struct UnknownFormat(pub String);

/// The answer to a request with `?format=` value `format` and `User-Agent` `user_agent`:
/// the parameter wins; else client apps are recognised by their User-Agent (Clash, mihomo,
/// Stash → Clash; sing-box, SFA/SFI/SFM, Hiddify → sing-box); else a browser (`Mozilla/…`)
/// gets the profile page; anything else the base64 list.
pub fn choose(format: Option<&str>, user_agent: Option<&str>) -> Result<Choice, UnknownFormat> {
    if let Some(f) = format.filter(|f| !f.trim().is_empty()) {
        return Format::parse(f)
            .map(Choice::Document)
            .ok_or_else(|| UnknownFormat(f.chars().take(32).collect()));
    }
    let ua = user_agent.unwrap_or_default().to_ascii_lowercase();
    let tokens: Vec<&str> = ua
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| !t.is_empty())
        .collect();
    let has = |needle: &str| tokens.iter().any(|t| t.contains(needle));
    if has("clash") || has("mihomo") || has("stash") {
        return Ok(Choice::Document(Format::Clash));
    }
    if has("sing-box")
        || has("hiddify")
        || tokens.iter().any(|t| matches!(*t, "sfa" | "sfi" | "sfm"))
    {
        return Ok(Choice::Document(Format::SingBox));
    }
    if ua.starts_with("mozilla/") {
        return Ok(Choice::Page);
    }
    Ok(Choice::Document(Format::Base64))
}

/// A rendered document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub format: Format,
    pub body: String,
}

/// The response headers clients read, for `profile` served as `format`:
/// `content-type`, `subscription-userinfo` (`upload=0; download=<used>; total=<quota or 0>;
/// expire=<unix seconds or 0>`), `profile-update-interval` (hours), `profile-title`
/// (`base64:` + the title), `content-disposition` (the title as file name) and, when known,
/// `profile-web-page-url`.
pub fn headers(profile: &Profile, format: Format) -> Vec<(&'static str, String)> {
    let u = profile.usage;
    let expire = u.expire_at_ms.map_or(0, |ms| ms.div_euclid(1000).max(0));
    let mut out = vec![
        ("content-type", format.content_type().to_owned()),
        (
            "subscription-userinfo",
            format!(
                "upload=0; download={}; total={}; expire={expire}",
                u.used,
                u.quota.unwrap_or(0)
            ),
        ),
        (
            "profile-update-interval",
            profile.update_interval_hours.max(1).to_string(),
        ),
        (
            "profile-title",
            format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(&profile.title)
            ),
        ),
        (
            "content-disposition",
            content_disposition(&profile.title, format.extension()),
        ),
    ];
    if let Some(url) = &profile.page_url {
        out.push(("profile-web-page-url", url.clone()));
    }
    out
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<title>.<ext>` (RFC 6266).
fn content_disposition(title: &str, ext: &str) -> String {
    let ascii: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = ascii.trim();
    let ascii = if ascii.is_empty() { "arch" } else { ascii };
    let file = format!("{title}.{ext}");
    let encoded = percent_encoding::utf8_percent_encode(&file, COMPONENT);
    format!("attachment; filename=\"{ascii}.{ext}\"; filename*=UTF-8''{encoded}")
}

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn host_part(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A SIP002 URL: classic methods base64url-encode `method:password` (no padding); SS-2022
/// (SIP022) percent-encodes it; the name is the percent-encoded fragment; IPv6 in brackets.
pub fn sip002(method: &str, password: &str, host: &str, port: u16, name: &str) -> String {
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
    let fragment = utf8_percent_encode(name, COMPONENT);
    format!("ss://{userinfo}@{}:{port}#{fragment}", host_part(host))
}

impl Server {
    /// This server as a SIP002 link.
    pub fn link(&self) -> String {
        sip002(
            &self.method,
            &self.password,
            &self.host,
            self.port,
            &self.name,
        )
    }
}

/// A UUID-shaped id derived from `seed` (SHA-256, version nibble 8 = custom): the same seed
/// gives the same id on every fetch, different seeds different ids.
pub fn stable_id(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// One-tap import URLs for a subscription at `url` named `title`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLinks {
    /// `clash://install-config?url=…` (Clash Verge, ClashX, mihomo-based apps).
    pub clash: String,
    /// `sing-box://import-remote-profile?url=…#title` (SFA, SFI, SFM).
    pub sing_box: String,
    /// `sub://<base64 of the URL>` (Shadowrocket).
    pub shadowrocket: String,
    /// `hiddify://import/<url>` (Hiddify).
    pub hiddify: String,
}

/// The import links of the common apps for the subscription `url`.
pub fn import_links(url: &str, title: &str) -> ImportLinks {
    use percent_encoding::utf8_percent_encode;
    let enc = utf8_percent_encode(url, COMPONENT).to_string();
    ImportLinks {
        clash: format!("clash://install-config?url={enc}"),
        sing_box: format!(
            "sing-box://import-remote-profile?url={enc}#{}",
            utf8_percent_encode(title, COMPONENT)
        ),
        shadowrocket: format!(
            "sub://{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        ),
        hiddify: format!("hiddify://import/{url}"),
    }
}

#[cfg(test)]
mod tests;
