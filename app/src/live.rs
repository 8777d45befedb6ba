//! Live updates: the browser side of the manager's `/events` Server-Sent Events stream.
//!
//! [`LiveState`] is created by the signed-in layout and provided as context. On the server it is
//! just empty signals (pages render from their resources); in the browser one `EventSource`
//! feeds it: node events overlay the rendered rows, "changed" events bump version counters that
//! pages use as resource sources, and a reconnect bumps them all (events may have been missed).

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;

use crate::model::{LiveEvent, NodeLive, UserLive};

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

    /// Applies one event from the stream.
    pub fn apply(&self, event: LiveEvent) {
        match event {
            LiveEvent::Node(live) => self.nodes.update(|m| {
                m.insert(live.id, live);
            }),
            LiveEvent::NodeRemoved { id } => self.removed.update(|s| {
                s.insert(id);
            }),
            LiveEvent::NodesChanged => self.reload_nodes(),
            LiveEvent::UsersChanged => self.reload_users(),
            LiveEvent::UserUsage(live) => self.users.update(|m| {
                m.insert(live.id, live);
            }),
            LiveEvent::SettingsChanged => self.settings_version.update(|v| *v += 1),
            LiveEvent::Other => {}
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

/// Sends the browser to the sign-in page with a full load (the session has ended).
pub fn go_to_login() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign("/login");
    }
}

/// Starts the event stream and the clock for `state`; both stop when the current owner is
/// cleaned up. A no-op on the server.
pub fn connect(state: LiveState) {
    #[cfg(feature = "hydrate")]
    browser::connect(state);
    #[cfg(not(feature = "hydrate"))]
    let _ = state;
}

#[cfg(feature = "hydrate")]
mod browser {
    //! The `EventSource` and timers (browser only).

    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use gloo_timers::callback::{Interval, Timeout};
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    use super::{LiveState, CLOCK_TICK_SECS};
    use crate::model::LiveEvent;

    /// Event names the manager sends (the SSE `event:` field is the event's `type`).
    const EVENT_NAMES: [&str; 8] = [
        "message",
        "node",
        "node_removed",
        "nodes_changed",
        "users_changed",
        "user_usage",
        "settings_changed",
        "resync",
    ];
    /// Delay before reopening a stream the browser gave up on.
    const RETRY_MS: u32 = 5_000;

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
        stopped: Cell<bool>,
    }

    pub fn connect(state: LiveState) {
        let conn = Rc::new(Connection::default());
        open(&conn, state);
        let clock = Interval::new(CLOCK_TICK_SECS * 1000, move || {
            state.now.set(crate::format::now_ms());
        });
        state.now.set(crate::format::now_ms());
        let guard = SendWrapper::new((conn, clock));
        on_cleanup(move || {
            let (conn, clock) = guard.take();
            conn.stopped.set(true);
            if let Some(stream) = conn.stream.borrow_mut().take() {
                stream.source.close();
            }
            drop(clock);
        });
    }

    fn open(conn: &Rc<Connection>, state: LiveState) {
        if conn.stopped.get() {
            return;
        }
        let source = match EventSource::new("/events") {
            Ok(source) => source,
            Err(err) => {
                leptos::logging::warn!("cannot open /events: {err:?}");
                return;
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            // The server fell behind and dropped events for this stream: reload everything.
            if ev.type_() == "resync" {
                state.resync();
                return;
            }
            let Some(text) = ev.data().as_string() else {
                return;
            };
            match serde_json::from_str::<LiveEvent>(&text) {
                Ok(event) => state.apply(event),
                Err(err) => leptos::logging::warn!("ignoring an unreadable event: {err}"),
            }
        });
        for name in EVENT_NAMES {
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
