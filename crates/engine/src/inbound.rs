//! The runtime form of one Shadowsocks inbound: its derived keys, its users and their
//! cancellation tokens and counters, and classic-AEAD user identification by key trial (each
//! classic user with their own cipher: clients of one classic port may use different ones).
//!
//! A port holds its [`InboundRuntime`] behind an `Arc` that a config apply swaps. Users whose
//! email and key are unchanged keep their `Arc<User>` (and so their token and live connections);
//! users that are gone are retired by cancelling their token.

use crate::stats::{Stats, Traffic};
use crate::EngineError;
use base64::Engine as _;
use shadowsocks::config::{ServerUser, ServerUserManager};
use shadowsocks::crypto::v1::{openssl_bytes_to_key, Cipher};
use shadowsocks::crypto::CipherKind;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use xray::Method;

/// A user of an inbound (or the anonymous holder of the server key when it has no clients).
#[derive(Debug)]
pub(crate) struct User {
    /// The Arch user id; `None` for the server key of a port without clients.
    pub(crate) email: Option<Arc<str>>,
    /// The user's key: derived from the password (classic) or the decoded PSK (SS-2022).
    pub(crate) key: Box<[u8]>,
    /// The user's cipher: their own classic method, else the inbound's.
    pub(crate) kind: CipherKind,
    /// `user>>>{email}>>>traffic>>>…`, when there is an email.
    pub(crate) traffic: Option<Traffic>,
    /// Cancelled when the user is removed or changed: closes their live connections.
    pub(crate) token: CancellationToken,
}

/// Everything a connection on a port needs to authenticate and account a client.
pub(crate) struct InboundRuntime {
    pub(crate) tag: Arc<str>,
    /// The method that decides how the port works: the inbound's, else (a classic port whose
    /// clients each name theirs) the first client's. Users' own ciphers are in [`User::kind`].
    pub(crate) method: Method,
    /// The cipher of `method`: the port's for SS-2022 and for a classic port without clients.
    pub(crate) kind: CipherKind,
    /// Bytes a classic connection is read for before trying users' keys: the longest salt
    /// among the port's ciphers plus the first length chunk.
    pub(crate) probe_len: usize,
    /// The inbound's own method and password, as configured (for carrying tokens over).
    configured: (Option<Method>, String),
    /// Classic: the derived server key (unused with clients). SS-2022: the iPSK / single PSK.
    pub(crate) server_key: Box<[u8]>,
    /// Classic: trial order. SS-2022 without clients: the one anonymous user.
    pub(crate) users: Vec<Arc<User>>,
    by_email: HashMap<Arc<str>, usize>,
    by_key: HashMap<Box<[u8]>, usize>,
    /// SS-2022 EIH users, handed to the crate per connection.
    pub(crate) manager: Option<Arc<ServerUserManager>>,
    pub(crate) traffic: Traffic,
    /// Parent of every user token; cancelled when method, key or tag change.
    pub(crate) token: CancellationToken,
    /// Shared by runtimes that share `token` (identity only).
    generation: Arc<()>,
}

/// Maps our method names onto the crate's cipher kinds.
pub(crate) fn cipher_kind(method: Method) -> CipherKind {
    match method {
        Method::Aes128Gcm => CipherKind::AES_128_GCM,
        Method::Aes256Gcm => CipherKind::AES_256_GCM,
        Method::Chacha20IetfPoly1305 => CipherKind::CHACHA20_POLY1305,
        Method::Blake3Aes128Gcm => CipherKind::AEAD2022_BLAKE3_AES_128_GCM,
        Method::Blake3Aes256Gcm => CipherKind::AEAD2022_BLAKE3_AES_256_GCM,
    }
}

/// The key for `password` under `method`: EVP_BytesToKey for classic, base64 PSK for SS-2022.
pub(crate) fn derive_key(method: Method, password: &str) -> Result<Box<[u8]>, String> {
    method.check_password(password).map_err(|e| e.to_string())?;
    if method.is_2022() {
        let key = base64::engine::general_purpose::STANDARD
            .decode(password)
            .map_err(|_| "an SS-2022 key must be standard base64".to_owned())?;
        Ok(key.into_boxed_slice())
    } else {
        let mut key = vec![0u8; method.key_len()];
        openssl_bytes_to_key(password.as_bytes(), &mut key);
        Ok(key.into_boxed_slice())
    }
}

/// Does `key` open the first length chunk of a classic AEAD stream? `probe` holds
/// `salt || enc(len) || tag`; a valid length is at most 0x3FFF.
pub(crate) fn classic_key_fits(kind: CipherKind, key: &[u8], probe: &[u8]) -> bool {
    let salt_len = kind.salt_len();
    let chunk_len = 2 + kind.tag_len();
    if probe.len() < salt_len + chunk_len || chunk_len > 32 {
        return false;
    }
    let (salt, rest) = probe.split_at(salt_len);
    let mut chunk = [0u8; 32];
    chunk[..chunk_len].copy_from_slice(&rest[..chunk_len]);
    let mut cipher = Cipher::new(kind, key, salt);
    if !cipher.decrypt_packet(&mut chunk[..chunk_len]) {
        return false;
    }
    u16::from_be_bytes([chunk[0], chunk[1]]) <= 0x3FFF
}

impl InboundRuntime {
    /// Builds the runtime of `inbound`, reusing `prev`'s tokens where the config allows the live
    /// connections to continue. Has no side effect besides creating counters.
    pub(crate) fn build(
        inbound: &xray::Inbound,
        prev: Option<&InboundRuntime>,
        port_token: &CancellationToken,
        stats: &Stats,
    ) -> Result<InboundRuntime, EngineError> {
        let s = &inbound.settings;
        let key_error = |message: String| EngineError::Key {
            tag: inbound.tag.clone(),
            message,
        };
        let configured = (s.method, s.password.clone());
        let same = prev.filter(|p| *p.tag == *inbound.tag && p.configured == configured);
        let token = same.map_or_else(|| port_token.child_token(), |p| p.token.clone());
        let generation = same.map_or_else(|| Arc::new(()), |p| p.generation.clone());
        let tag: Arc<str> = inbound.tag.as_str().into();
        let method = s
            .port_method()
            .ok_or_else(|| key_error("the inbound has no method".to_owned()))?;
        let kind = cipher_kind(method);
        let server_key = if s.clients.is_empty() || method.is_2022() {
            derive_key(method, &s.password).map_err(key_error)?
        } else {
            Box::default()
        };
        let reuse = |email: Option<&str>, key: &[u8], kind: CipherKind| -> Option<Arc<User>> {
            same?
                .users
                .iter()
                .find(|u| u.email.as_deref() == email && *u.key == *key && u.kind == kind)
                .cloned()
        };
        let mut users = Vec::with_capacity(s.clients.len().max(1));
        let mut manager = None;
        if s.clients.is_empty() {
            let user = reuse(None, &server_key, kind).unwrap_or_else(|| {
                Arc::new(User {
                    email: None,
                    key: server_key.clone(),
                    kind,
                    traffic: None,
                    token: token.child_token(),
                })
            });
            users.push(user);
        } else {
            let mut m = ServerUserManager::new();
            for client in &s.clients {
                let own = s.client_method(client).unwrap_or(method);
                if own.is_2022() != method.is_2022() || (method.is_2022() && own != method) {
                    return Err(key_error(format!(
                        "user `{}`: method `{own}` cannot share a port with `{method}`",
                        client.email
                    )));
                }
                let key = derive_key(own, &client.password).map_err(&key_error)?;
                if method.is_2022() {
                    m.add_user(ServerUser::new(client.email.clone(), key.to_vec()));
                }
                let kind = cipher_kind(own);
                let user = reuse(Some(&client.email), &key, kind).unwrap_or_else(|| {
                    Arc::new(User {
                        email: Some(client.email.as_str().into()),
                        traffic: Some(stats.traffic("user", &client.email)),
                        key,
                        kind,
                        token: token.child_token(),
                    })
                });
                users.push(user);
            }
            if method.is_2022() {
                manager = Some(Arc::new(m));
            }
        }
        let by_email = users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((u.email.clone()?, i)))
            .collect();
        let by_key = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.key.clone(), i))
            .collect();
        let probe_len = users
            .iter()
            .map(|u| u.kind)
            .chain([kind])
            .map(|k| k.salt_len() + 2 + k.tag_len())
            .max()
            .unwrap_or_default();
        Ok(InboundRuntime {
            traffic: stats.traffic("inbound", &tag),
            tag,
            method,
            kind,
            probe_len,
            configured,
            server_key,
            users,
            by_email,
            by_key,
            manager,
            token,
            generation,
        })
    }

    /// Cancels what `next` no longer allows: the whole inbound when its token was not carried
    /// over, otherwise each user that was not.
    pub(crate) fn retire(&self, next: Option<&InboundRuntime>) {
        let Some(next) = next.filter(|n| Arc::ptr_eq(&n.generation, &self.generation)) else {
            self.token.cancel();
            return;
        };
        for user in &self.users {
            if !next.users.iter().any(|u| Arc::ptr_eq(u, user)) {
                user.token.cancel();
            }
        }
    }

    /// The user a classic probe belongs to: the hinted user first, then (if `scan`) every user.
    pub(crate) fn identify_classic(
        &self,
        probe: &[u8],
        hint: Option<&str>,
        scan: bool,
    ) -> Option<Arc<User>> {
        let hinted = hint.and_then(|h| self.by_email.get(h)).copied();
        if let Some(i) = hinted {
            let user = &self.users[i];
            if classic_key_fits(user.kind, &user.key, probe) {
                return Some(self.users[i].clone());
            }
        }
        if !scan {
            return None;
        }
        self.users
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != hinted)
            .find(|(_, u)| classic_key_fits(u.kind, &u.key, probe))
            .map(|(_, u)| u.clone())
    }

    /// The SS-2022 user authenticated with `key` (EIH), or the anonymous user of a single-key port.
    pub(crate) fn user_by_key(&self, key: Option<&[u8]>) -> Option<Arc<User>> {
        match key {
            Some(k) => self.by_key.get(k).map(|&i| self.users[i].clone()),
            None if self.manager.is_none() => self.users.first().cloned(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray::{Client, Inbound, Network};

    fn inbound(method: Method, password: &str, users: &[(&str, &str)]) -> Inbound {
        let clients = users
            .iter()
            .map(|(e, p)| Client {
                email: (*e).into(),
                password: (*p).into(),
                method: None,
            })
            .collect();
        Inbound::shadowsocks("in", 1000, method, password, Network::Tcp, clients)
    }

    /// `salt || enc(len) || tag` as a classic client would start its stream.
    fn probe(kind: CipherKind, password: &str, len: u16) -> Vec<u8> {
        let mut key = vec![0u8; kind.key_len()];
        openssl_bytes_to_key(password.as_bytes(), &mut key);
        let salt = vec![9u8; kind.salt_len()];
        let mut chunk = vec![0u8; 2 + kind.tag_len()];
        chunk[..2].copy_from_slice(&len.to_be_bytes());
        Cipher::new(kind, &key, &salt).encrypt_packet(&mut chunk);
        [salt, chunk].concat()
    }

    fn build(
        ib: &Inbound,
        prev: Option<&InboundRuntime>,
        root: &CancellationToken,
    ) -> InboundRuntime {
        InboundRuntime::build(ib, prev, root, &Stats::default()).expect("build")
    }

    #[test]
    fn classic_trial_finds_the_user_and_checks_the_length() {
        let root = CancellationToken::new();
        let users = [("a", "pw-a"), ("b", "pw-b"), ("c", "pw-c")];
        let rt = build(&inbound(Method::Aes256Gcm, "", &users), None, &root);
        let kind = CipherKind::AES_256_GCM;
        let found = rt.identify_classic(&probe(kind, "pw-c", 100), None, true);
        assert_eq!(found.and_then(|u| u.email.clone()).as_deref(), Some("c"));
        // The hint alone finds a returning user without a scan…
        let found = rt.identify_classic(&probe(kind, "pw-b", 100), Some("b"), false);
        assert_eq!(found.and_then(|u| u.email.clone()).as_deref(), Some("b"));
        // …and without the scan a wrong hint finds nothing.
        assert!(rt
            .identify_classic(&probe(kind, "pw-b", 100), Some("a"), false)
            .is_none());
        assert!(rt
            .identify_classic(&probe(kind, "nobody", 100), None, true)
            .is_none());
        // A length above 0x3FFF is not a valid first chunk.
        assert!(rt
            .identify_classic(&probe(kind, "pw-a", 0x4000), None, true)
            .is_none());
    }

    #[test]
    fn classic_users_of_one_port_are_tried_with_their_own_ciphers() {
        let root = CancellationToken::new();
        let client = |email: &str, password: &str, method: Method| Client {
            email: email.into(),
            password: password.into(),
            method: Some(method),
        };
        let clients = vec![
            client("a", "pw", Method::Aes128Gcm),
            client("b", "pw", Method::Chacha20IetfPoly1305),
            client("c", "pw-c", Method::Aes256Gcm),
        ];
        let mut ib = Inbound::shadowsocks("in", 1000, Method::Aes128Gcm, "", Network::Tcp, clients);
        ib.settings.method = None;
        let rt = build(&ib, None, &root);
        // The longest salt (32 bytes) plus the first length chunk.
        assert_eq!(rt.probe_len, 32 + 2 + 16);
        let email = |u: Option<Arc<User>>| u.and_then(|u| u.email.clone());
        // The same password under two ciphers: each probe finds the user of its cipher.
        for (kind, want) in [
            (CipherKind::AES_128_GCM, "a"),
            (CipherKind::CHACHA20_POLY1305, "b"),
        ] {
            let p = probe(kind, "pw", 100);
            assert_eq!(
                email(rt.identify_classic(&p, None, true)).as_deref(),
                Some(want)
            );
        }
        let p = probe(CipherKind::AES_256_GCM, "pw-c", 100);
        assert_eq!(
            email(rt.identify_classic(&p, Some("a"), true)).as_deref(),
            Some("c")
        );
        // Nobody uses pw-c with chacha20.
        let p = probe(CipherKind::CHACHA20_POLY1305, "pw-c", 100);
        assert!(rt.identify_classic(&p, None, true).is_none());

        // Changing only b's cipher retires b (same password, so the same key) and keeps a.
        let (a, b) = (rt.users[0].clone(), rt.users[1].clone());
        let mut next_ib = ib.clone();
        next_ib.settings.clients[1].method = Some(Method::Aes256Gcm);
        let next = build(&next_ib, Some(&rt), &root);
        rt.retire(Some(&next));
        assert!(!a.token.is_cancelled());
        assert!(b.token.is_cancelled());
        assert_eq!(next.users[1].kind, CipherKind::AES_256_GCM);
    }

    #[test]
    fn apply_keeps_unchanged_users_and_retires_the_rest() {
        let root = CancellationToken::new();
        let first = build(
            &inbound(Method::Aes128Gcm, "", &[("a", "1"), ("b", "2"), ("c", "3")]),
            None,
            &root,
        );
        let (a, b, c) = (
            first.users[0].clone(),
            first.users[1].clone(),
            first.users[2].clone(),
        );
        // b removed, c's password changed, d added.
        let next_ib = inbound(
            Method::Aes128Gcm,
            "",
            &[("a", "1"), ("c", "33"), ("d", "4")],
        );
        let next = build(&next_ib, Some(&first), &root);
        first.retire(Some(&next));
        assert!(Arc::ptr_eq(&next.users[0], &a));
        assert!(!a.token.is_cancelled());
        assert!(b.token.is_cancelled());
        assert!(c.token.is_cancelled());
        assert!(!next.users[1].token.is_cancelled());
        assert!(!next.token.is_cancelled());

        // A method change replaces the whole inbound.
        let changed = build(
            &inbound(Method::Aes256Gcm, "", &[("a", "1")]),
            Some(&next),
            &root,
        );
        next.retire(Some(&changed));
        assert!(next.token.is_cancelled());
        assert!(a.token.is_cancelled());
        assert!(!changed.users[0].token.is_cancelled());
    }

    #[test]
    fn ss2022_users_are_found_by_key() {
        let root = CancellationToken::new();
        let k = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 16]);
        let ib = inbound(
            Method::Blake3Aes128Gcm,
            &k(1),
            &[("e", &k(2)), ("f", &k(3))],
        );
        let rt = build(&ib, None, &root);
        assert_eq!(rt.manager.as_ref().map(|m| m.user_count()), Some(2));
        let f = rt
            .user_by_key(Some(&[3u8; 16]))
            .and_then(|u| u.email.clone());
        assert_eq!(f.as_deref(), Some("f"));
        assert!(
            rt.user_by_key(None).is_none(),
            "EIH ports have no anonymous user"
        );
        let single = build(&inbound(Method::Blake3Aes128Gcm, &k(1), &[]), None, &root);
        let anon = single.user_by_key(None).expect("anonymous");
        assert_eq!((anon.email.clone(), &*anon.key), (None, &[1u8; 16][..]));
    }

    #[test]
    fn bad_keys_name_the_inbound() {
        let root = CancellationToken::new();
        let ib = inbound(Method::Blake3Aes128Gcm, "short", &[]);
        let err = InboundRuntime::build(&ib, None, &root, &Stats::default())
            .err()
            .expect("error");
        assert!(
            matches!(err, EngineError::Key { ref tag, .. } if tag == "in"),
            "{err}"
        );
    }
}
