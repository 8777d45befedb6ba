//! Live updates: the browser side of the manager's `/events` Server-Sent Events stream.
//!
//! Every live part of a page (an island) gets the page's one [`LiveState`] from [`use_live`]. On
//! the server it is just empty signals (pages render from their resources); in the browser one
//! `EventSource`, opened by the first island that asks, feeds it for every island of the page:
//! node events overlay the rendered rows, "changed" events bump version counters that islands
//! use as resource sources, and a reconnect bumps them all (events may have been missed).
//!
//! The events are `rules::Event`, the type the manager sends: the names listened for are
//! [`listened_names`] and every message goes through [`decode`], so an event the manager can send
//! is one this decoder reads (see the tests).

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use rules::event::{Event, RESYNC};

use crate::model::{NodeLive, UserLive};

/// Seconds between refreshes of the "now" used for relative times.
pub const CLOCK_TICK_SECS: u32 = 1;

/// Reactive state fed by `/events`.
#[derive(Clone, Copy)]
pub struct LiveState {
    /// Latest live fields per node id; these win over the rendered list.
    pub nodes: RwSignal<HashMap<i64, NodeLive>>,
    /// Latest usage / enabled per user id; these win over the rendered list.
    pub users: RwSignal<HashMap<i64, UserLive>>,
    /// Nodes deleted since the list was loaded.
    pub removed: RwSignal<HashSet<i64>>,
    /// Bumped when the node list must be reloaded.
    pub nodes_version: RwSignal<u64>,
    /// Bumped when the user list must be reloaded.
    pub users_version: RwSignal<u64>,
    /// Bumped when the settings changed elsewhere.
    pub settings_version: RwSignal<u64>,
    /// Whether the event stream is currently open.
    pub connected: RwSignal<bool>,
    /// "Now" in unix ms, refreshed every [`CLOCK_TICK_SECS`] in the browser.
    pub now: RwSignal<i64>,
}

impl Default for LiveState {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveState {
    pub fn new() -> Self {
        Self {
            nodes: RwSignal::new(HashMap::new()),
            users: RwSignal::new(HashMap::new()),
            removed: RwSignal::new(HashSet::new()),
            nodes_version: RwSignal::new(0),
            users_version: RwSignal::new(0),
            settings_version: RwSignal::new(0),
            connected: RwSignal::new(false),
            now: RwSignal::new(crate::format::now_ms()),
        }
    }

    /// `user` with the latest live fields from the stream applied, as a memo.
    pub fn user(&self, user: crate::model::UserView) -> Memo<crate::model::UserView> {
        let users = self.users;
        let id = user.id;
        Memo::new(move |_| {
            users.with(|m| match m.get(&id) {
                Some(l) => user.clone().with_live(l),
                None => user.clone(),
            })
        })
    }

    /// `node` with the latest live fields from the stream applied, as a memo.
    pub fn node(&self, node: crate::model::NodeView) -> Memo<crate::model::NodeView> {
        let nodes = self.nodes;
        let id = node.id;
        Memo::new(move |_| {
            nodes.with(|m| match m.get(&id) {
                Some(l) => node.clone().with_live(l),
                None => node.clone(),
            })
        })
    }

    /// Applies one event from the stream.
    pub fn apply(&self, event: Event) {
        match event {
            Event::Node(live) => self.nodes.update(|m| {
                m.insert(live.id, live);
            }),
            Event::NodeRemoved { id } => self.removed.update(|s| {
                s.insert(id);
            }),
            Event::NodesChanged => self.reload_nodes(),
            Event::UsersChanged => self.reload_users(),
            Event::UserUsage(live) => self.users.update(|m| {
                m.insert(live.id, live);
            }),
            Event::SettingsChanged => self.settings_version.update(|v| *v += 1),
        }
    }

    /// Handles one decoded message of the stream.
    pub fn receive(&self, message: Message) {
        match message {
            Message::Event(event) => self.apply(*event),
            Message::Resync => self.resync(),
        }
    }

    /// Reloads the node list; the fresh list supersedes the live overlay.
    pub fn reload_nodes(&self) {
        self.nodes.update(HashMap::clear);
        self.nodes_version.update(|v| *v += 1);
    }

    /// Reloads the user list; the fresh list supersedes the live overlay.
    pub fn reload_users(&self) {
        self.users.update(HashMap::clear);
        self.users_version.update(|v| *v += 1);
    }

    /// Reloads everything (after a reconnect, when events may have been missed).
    pub fn resync(&self) {
        self.reload_nodes();
        self.reload_users();
    }
}

/// One message of the `/events` stream, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Boxed: a node event is large, the resync signal carries nothing.
    Event(Box<Event>),
    /// The server dropped events for this stream: reload everything.
    Resync,
}

/// The SSE event names the browser listens for: every event's name, and `resync`.
pub fn listened_names() -> impl Iterator<Item = &'static str> {
    Event::NAMES.into_iter().chain([RESYNC])
}

/// Decodes one SSE message from its event name and data. An event whose data does not parse, or
/// whose `type` differs from its name, is an error (logged by the caller), never silently dropped.
pub fn decode(name: &str, data: &str) -> Result<Message, String> {
    if name == RESYNC {
        return Ok(Message::Resync);
    }
    let event: Event = serde_json::from_str(data).map_err(|e| format!("{name}: {e}"))?;
    if event.name() != name {
        return Err(format!("{name}: carries a {} event", event.name()));
    }
    Ok(Message::Event(Box::new(event)))
}

/// Sends the browser to the sign-in page with a full load (the session has ended).
pub fn go_to_login() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign("/login");
    }
}

/// The page's live state. In the browser: one for the whole page, shared by its islands, created
/// and connected to `/events` on the first call (it lives as long as the page). On the server: the
/// one the signed-in layout provided for this render, or a fresh one (never fed).
pub fn use_live() -> LiveState {
    #[cfg(feature = "hydrate")]
    {
        browser::page_state()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        use_context::<LiveState>().unwrap_or_default()
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    //! The `EventSource` and timers (browser only).

    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use gloo_timers::callback::{Interval, Timeout};
    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    use super::{LiveState, CLOCK_TICK_SECS};
    /// Delay before reopening a stream the browser gave up on.
    const RETRY_MS: u32 = 5_000;

    thread_local! {
        /// The page's state, once an island asked for it.
        static PAGE: std::cell::OnceCell<LiveState> = const { std::cell::OnceCell::new() };
    }

    /// The page's state; the first call creates it under its own root owner (never cleaned up:
    /// islands come and go, the page's stream stays) and connects it.
    pub fn page_state() -> LiveState {
        PAGE.with(|page| {
            *page.get_or_init(|| {
                let owner = Owner::new_root(None);
                let state = owner.with(|| {
                    let state = LiveState::new();
                    connect(state);
                    state
                });
                std::mem::forget(owner);
                state
            })
        })
    }

    /// The open stream and the callbacks it references (dropped together).
    struct Stream {
        source: EventSource,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_open: Closure<dyn FnMut(web_sys::Event)>,
        _on_error: Closure<dyn FnMut(web_sys::Event)>,
    }

    #[derive(Default)]
    struct Connection {
        stream: RefCell<Option<Stream>>,
        retry_pending: Cell<bool>,
        opened_once: Cell<bool>,
    }

    /// Opens the stream and starts the clock for `state`, for the rest of the page's life.
    fn connect(state: LiveState) {
        let conn = Rc::new(Connection::default());
        open(&conn, state);
        Interval::new(CLOCK_TICK_SECS * 1000, move || {
            state.now.set(crate::format::now_ms());
        })
        .forget();
        // The stream and its callbacks stay for the page's life, like the state.
        std::mem::forget(conn);
    }

    fn open(conn: &Rc<Connection>, state: LiveState) {
        let source = match EventSource::new("/events") {
            Ok(source) => source,
            Err(err) => {
                leptos::logging::warn!("cannot open /events: {err:?}");
                return;
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let text = ev.data().as_string().unwrap_or_default();
            match super::decode(&ev.type_(), &text) {
                Ok(message) => state.receive(message),
                Err(err) => leptos::logging::warn!("ignoring an unreadable event: {err}"),
            }
        });
        for name in super::listened_names() {
            let _ =
                source.add_event_listener_with_callback(name, on_message.as_ref().unchecked_ref());
        }
        let weak = Rc::downgrade(conn);
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            state.connected.set(true);
            if let Some(conn) = weak.upgrade() {
                if conn.opened_once.replace(true) {
                    state.resync();
                }
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let weak = Rc::downgrade(conn);
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            state.connected.set(false);
            let Some(conn) = weak.upgrade() else { return };
            // CONNECTING: the browser retries by itself. CLOSED: it gave up (e.g. an HTTP error),
            // so retry later with a fresh stream; a 401 then ends up on the sign-in page via the
            // next server-function call.
            let closed = conn
                .stream
                .borrow()
                .as_ref()
                .is_some_and(|s| s.source.ready_state() == EventSource::CLOSED);
            if closed && !conn.retry_pending.replace(true) {
                let weak = Rc::downgrade(&conn);
                // Forgotten: it fires once and holds only a weak reference.
                Timeout::new(RETRY_MS, move || {
                    if let Some(conn) = weak.upgrade() {
                        conn.retry_pending.set(false);
                        open(&conn, state);
                    }
                })
                .forget();
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let old = conn.stream.borrow_mut().replace(Stream {
            source,
            _on_message: on_message,
            _on_open: on_open,
            _on_error: on_error,
        });
        if let Some(old) = old {
            old.source.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a live view can see of the state.
    fn seen(state: &LiveState) -> (Vec<i64>, Vec<i64>, Vec<i64>, [u64; 3]) {
        let keys = |m: Vec<i64>| {
            let mut m = m;
            m.sort_unstable();
            m
        };
        (
            keys(state.nodes.with_untracked(|m| m.keys().copied().collect())),
            keys(state.users.with_untracked(|m| m.keys().copied().collect())),
            keys(
                state
                    .removed
                    .with_untracked(|s| s.iter().copied().collect()),
            ),
            [
                state.nodes_version.get_untracked(),
                state.users_version.get_untracked(),
                state.settings_version.get_untracked(),
            ],
        )
    }

    #[test]
    fn every_event_the_manager_sends_reaches_the_panel() {
        // Signals need a reactive owner (and its arena on the server).
        let owner = Owner::new_root(None);
        owner.set();
        for event in Event::examples() {
            // As the manager's `/events` route writes it.
            let (name, data) = (event.name(), event.data());
            assert!(
                listened_names().any(|n| n == name),
                "{name} not listened for"
            );
            assert_eq!(
                decode(name, &data),
                Ok(Message::Event(Box::new(event.clone())))
            );
            let state = LiveState::new();
            let before = seen(&state);
            state.receive(Message::Event(Box::new(event.clone())));
            assert_ne!(seen(&state), before, "{name} changed nothing");
        }
        assert_eq!(
            listened_names().count(),
            Event::NAMES.len() + 1,
            "one name per event, and resync"
        );
    }

    #[test]
    fn resync_and_unreadable_messages() {
        assert_eq!(decode(RESYNC, "{}"), Ok(Message::Resync));
        let owner = Owner::new_root(None);
        owner.set();
        let state = LiveState::new();
        state.receive(Message::Resync);
        assert_eq!(seen(&state), (vec![], vec![], vec![], [1, 1, 0]));
        assert_eq!(
            decode("node_removed", r#"{"type":"users_changed"}"#),
            Err("node_removed: carries a users_changed event".to_owned())
        );
        assert!(decode("audit", r#"{"type":"audit"}"#).is_err());
        assert!(decode("node", "").is_err());
    }
}
