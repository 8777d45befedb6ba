//! One page of users: filtered by a name substring (`q`) and a status, sorted by id, name, usage
//! or creation time, either way, and paged by keyset — never `OFFSET` — so every page costs the
//! same at 100,000 users as at 100. [`UserQuery::from_params`] is the one place raw query strings
//! (`?limit&after&q&status&sort`) are checked; a refused value names its field.
//!
//! The keyset is (sort value, id): ids are unique, so ties in usage or creation time are ordered
//! by id and no user is shown twice or skipped while paging. The cursor (`after`, handed out as a
//! page's `next`) is opaque to clients: base64url of `sort:id:value`, checked when read back —
//! a malformed or foreign cursor is an invalid `after`, never a panic, and a forged one only
//! moves where the page starts. Names sort by their bytes (Unicode code points) on SQLite and
//! PostgreSQL alike (`COLLATE "C"` there, whatever the database's locale); `q` is matched with
//! `LIKE … ESCAPE '\'`, `%`, `_` and `\` escaped so they match literally, ignoring case
//! (`LOWER` on both sides on PostgreSQL; SQLite's LIKE ignores ASCII case by itself, as far as
//! its `LOWER` would). The total is a `COUNT(*)` of the filters, skipped when the first page
//! already holds every match.
//! The indexes that keep each sort and filter fast are in migration
//! `m20261204_000001_user_pages`.

use super::{User, UserService};
use crate::entity::user::{self, Entity as UserEntity};
use crate::{Result, ServiceError};
use base64::Engine as _;
use rules::DisableReason;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, IntoSimpleExpr, Order, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

/// Users on a page when the query names no `limit`.
pub const DEFAULT_PAGE: u32 = 50;
/// Most users on one page.
pub const MAX_PAGE: u32 = 500;
/// Longest `q` (no user name is longer, so a longer one could match nothing).
const MAX_Q_CHARS: usize = rules::input::MAX_NAME_CHARS;
/// Longest cursor accepted (a real one is well under it).
const MAX_CURSOR_CHARS: usize = 256;

/// Which users, in which order, from where (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Users per page, 1–[`MAX_PAGE`].
    pub limit: u32,
    /// The `next` cursor of the previous page with the same sort; `None` = the first page.
    pub after: Option<String>,
    /// A case-insensitive substring of the name, matched literally; `None` = any name.
    pub q: Option<String>,
    /// `None` = every user.
    pub status: Option<UserStatus>,
    pub sort: UserSort,
}

impl Default for UserQuery {
    /// The first [`DEFAULT_PAGE`] users by id.
    fn default() -> Self {
        UserQuery {
            limit: DEFAULT_PAGE,
            after: None,
            q: None,
            status: None,
            sort: UserSort::default(),
        }
    }
}

/// One page: the users, how many match the filters in all (whatever the cursor), and the
/// cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: u64,
    pub next: Option<String>,
}

/// A status filter: `enabled`, `disabled`, or disabled for one reason (`quota`, `expired`,
/// `manual`, the stored [`DisableReason`] values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Enabled,
    Disabled,
    DisabledFor(DisableReason),
}

impl UserStatus {
    /// The status named `value` (its query value).
    pub fn parse(value: &str) -> Option<UserStatus> {
        match value {
            "enabled" => Some(UserStatus::Enabled),
            "disabled" => Some(UserStatus::Disabled),
            _ => DisableReason::ALL
                .into_iter()
                .find(|r| r.as_str() == value)
                .map(UserStatus::DisabledFor),
        }
    }

    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Enabled => "enabled",
            UserStatus::Disabled => "disabled",
            UserStatus::DisabledFor(r) => r.as_str(),
        }
    }
}

/// What users are sorted by (then by id, for ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Id,
    Name,
    /// `usage_bytes`.
    Usage,
    /// `created_at`.
    Created,
}

impl SortKey {
    /// Every key, as `sort` names them.
    pub const ALL: [SortKey; 4] = [SortKey::Id, SortKey::Name, SortKey::Usage, SortKey::Created];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Name => "name",
            SortKey::Usage => "usage",
            SortKey::Created => "created",
        }
    }
}

/// A sort order: a key, ascending unless `descending` (`-` before the key in `sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserSort {
    pub key: SortKey,
    pub descending: bool,
}

impl UserSort {
    /// `id`, `name`, `usage` or `created`, optionally after a `-` for descending.
    pub fn parse(value: &str) -> Option<UserSort> {
        let (descending, key) = match value.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, value),
        };
        SortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == key)
            .map(|key| UserSort { key, descending })
    }

    /// The `sort` value.
    pub fn as_str(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.as_str()
        )
    }
}

impl UserQuery {
    /// The query of URL parameters (already percent-decoded): `limit`, `after`, `q`, `status`,
    /// `sort`. An empty value counts as absent; an unknown or repeated key, or a value a rule
    /// refuses, is an invalid error naming the key.
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut query = UserQuery::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in params {
            if seen.contains(&key) {
                return Err(ServiceError::invalid(key, "must be given once"));
            }
            seen.push(key);
            let value = value.trim();
            match key {
                _ if value.is_empty() && is_param(key) => {}
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(limit_error)?;
                }
                "after" => query.after = Some(value.to_owned()),
                "q" => query.q = Some(value.to_owned()),
                "status" => {
                    query.status = Some(UserStatus::parse(value).ok_or_else(|| {
                        ServiceError::invalid(
                            "status",
                            "must be enabled, disabled, quota, expired or manual",
                        )
                    })?);
                }
                "sort" => query.sort = UserSort::parse(value).ok_or_else(sort_error)?,
                _ => {
                    return Err(ServiceError::invalid(
                        key,
                        "is not a parameter (use limit, after, q, status, sort)",
                    ))
                }
            }
        }
        query.check()?;
        Ok(query)
    }

    /// The query as URL parameters, percent-encoded, defaults left out (`limit=20&q=a%25`);
    /// what [`UserQuery::from_params`] reads back as the same query.
    pub fn to_query_string(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.limit != DEFAULT_PAGE {
            pairs.push(("limit", self.limit.to_string()));
        }
        if let Some(q) = &self.q {
            pairs.push(("q", q.clone()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.as_str().to_owned()));
        }
        if self.sort != UserSort::default() {
            pairs.push(("sort", self.sort.as_str()));
        }
        if let Some(after) = &self.after {
            pairs.push(("after", after.clone()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The rules a typed query must follow too (it need not come from [`UserQuery::from_params`]).
    fn check(&self) -> Result<()> {
        if !(1..=MAX_PAGE).contains(&self.limit) {
            return Err(limit_error());
        }
        if self
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_Q_CHARS)
        {
            return Err(ServiceError::invalid(
                "q",
                format!("must be at most {MAX_Q_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

fn is_param(key: &str) -> bool {
    matches!(key, "limit" | "after" | "q" | "status" | "sort")
}

fn limit_error() -> ServiceError {
    ServiceError::invalid(
        "limit",
        format!("must be a whole number from 1 to {MAX_PAGE}"),
    )
}

fn sort_error() -> ServiceError {
    ServiceError::invalid(
        "sort",
        "must be id, name, usage or created, optionally after - for descending",
    )
}

fn cursor_error() -> ServiceError {
    ServiceError::invalid(
        "after",
        "must be the next cursor of a previous page with the same sort",
    )
}

/// Where a page starts: after the user with this sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Number(i64, i64),
    Name(String, i64),
}

impl Cursor {
    /// The cursor just after `user` in `sort`.
    fn after(user: &User, sort: UserSort) -> Cursor {
        match sort.key {
            SortKey::Id => Cursor::Number(user.id, user.id),
            SortKey::Usage => Cursor::Number(user.usage_bytes, user.id),
            SortKey::Created => Cursor::Number(user.created_at, user.id),
            SortKey::Name => Cursor::Name(user.name.clone(), user.id),
        }
    }

    fn encode(&self, sort: UserSort) -> String {
        let text = match self {
            Cursor::Number(value, id) => format!("{}:{id}:{value}", sort.as_str()),
            Cursor::Name(name, id) => format!("{}:{id}:{name}", sort.as_str()),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor `text` encodes, if it was made for `sort`.
    fn decode(text: &str, sort: UserSort) -> Result<Cursor> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(cursor_error());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| cursor_error())?;
        let text = String::from_utf8(bytes).map_err(|_| cursor_error())?;
        let mut parts = text.splitn(3, ':');
        let (Some(made_for), Some(id), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(cursor_error());
        };
        if made_for != sort.as_str() {
            return Err(cursor_error());
        }
        let id: i64 = id.parse().map_err(|_| cursor_error())?;
        match sort.key {
            SortKey::Name => Ok(Cursor::Name(value.to_owned(), id)),
            _ => {
                let value: i64 = value.parse().map_err(|_| cursor_error())?;
                if sort.key == SortKey::Id && value != id {
                    return Err(cursor_error());
                }
                Ok(Cursor::Number(value, id))
            }
        }
    }
}

/// `value` with the LIKE wildcards and the escape character escaped, inside `%…%`.
fn like_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The users matching the query's filters (no cursor, no order). `for_page`: the page query,
/// sorted by `query.sort`.
fn filtered(query: &UserQuery, backend: DbBackend, for_page: bool) -> Select<UserEntity> {
    let mut select = UserEntity::find();
    if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
        // SQLite's LIKE ignores ASCII case as its LOWER does (and no more), so it needs no LOWER
        // calls; PostgreSQL's LIKE minds case. `$n` numbers the arguments on PostgreSQL, `?`
        // takes them in order on SQLite.
        let sql = match backend {
            DbBackend::Postgres => r"LOWER($1) LIKE LOWER($2) ESCAPE '\'",
            _ => r"? LIKE ? ESCAPE '\'",
        };
        select = select.filter(Expr::cust_with_exprs(
            sql,
            [
                user::Column::Name.into_simple_expr(),
                Expr::val(like_pattern(q)),
            ],
        ));
    }
    let enabled = |value: bool| {
        if for_page && backend == DbBackend::Sqlite && query.sort.key != SortKey::Id {
            // `+enabled` keeps SQLite (which has no statistics unless ANALYZE ran) off the
            // (enabled, id) index for other sorts: walking the sort's index and skipping the
            // other status is cheap, sorting all enabled users is not.
            Expr::cust_with_exprs(
                "+? = ?",
                [user::Column::Enabled.into_simple_expr(), Expr::val(value)],
            )
        } else {
            user::Column::Enabled.eq(value)
        }
    };
    match query.status {
        None => {}
        Some(UserStatus::Enabled) => select = select.filter(enabled(true)),
        Some(UserStatus::Disabled) => select = select.filter(enabled(false)),
        Some(UserStatus::DisabledFor(reason)) => {
            select = select
                .filter(user::Column::Enabled.eq(false))
                .filter(user::Column::DisabledReason.eq(reason))
        }
    }
    select
}

/// The expression users are sorted by.
fn sort_expr(key: SortKey, backend: DbBackend) -> Expr {
    match key {
        SortKey::Id => user::Column::Id.into_simple_expr(),
        SortKey::Usage => user::Column::UsageBytes.into_simple_expr(),
        SortKey::Created => user::Column::CreatedAt.into_simple_expr(),
        // Byte order on both (SQLite's default BINARY collation); matches the index.
        SortKey::Name => match backend {
            DbBackend::Postgres => {
                Expr::cust_with_expr(r#"$1 COLLATE "C""#, user::Column::Name.into_simple_expr())
            }
            _ => user::Column::Name.into_simple_expr(),
        },
    }
}

impl UserService {
    /// One page of users (see the module doc). An invalid query or cursor is refused naming its
    /// field (`limit`, `q`, `after`).
    pub async fn page(&self, query: UserQuery) -> Result<UserPage> {
        query.check()?;
        let db = &self.ctx.db;
        let backend = db.get_database_backend();
        let cursor = query
            .after
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(|a| Cursor::decode(a, query.sort))
            .transpose()?;
        let key = sort_expr(query.sort.key, backend);
        let order = if query.sort.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let mut select = filtered(&query, backend, true);
        let first = cursor.is_none();
        if let Some(cursor) = cursor {
            let (value, id) = match cursor {
                Cursor::Number(value, id) => (Expr::val(value), id),
                Cursor::Name(name, id) => (Expr::val(name), id),
            };
            let id_col = user::Column::Id.into_simple_expr();
            // A row value comparison: both databases use the (key, id) index for it.
            let (left, right) = if query.sort.key == SortKey::Id {
                (id_col, Expr::val(id))
            } else {
                (
                    Expr::tuple([key.clone(), id_col]),
                    Expr::tuple([value, Expr::val(id)]),
                )
            };
            select = select.filter(if query.sort.descending {
                left.lt(right)
            } else {
                left.gt(right)
            });
        }
        if query.sort.key != SortKey::Id {
            select = select.order_by(key, order.clone());
        }
        let limit = u64::from(query.limit);
        let mut users = select
            .order_by(user::Column::Id, order)
            .limit(limit + 1)
            .all(db)
            .await?;
        // A first page that holds every match is its own count (a rare search then reads the
        // table once, not twice).
        let total = if first && users.len() as u64 <= limit {
            users.len() as u64
        } else {
            let n: i64 = filtered(&query, backend, false)
                .select_only()
                .expr(Expr::cust("COUNT(*)"))
                .into_tuple()
                .one(db)
                .await?
                .unwrap_or(0);
            u64::try_from(n).unwrap_or(0)
        };
        let next = if users.len() as u64 > limit {
            users.truncate(query.limit as usize);
            users
                .last()
                .map(|u| Cursor::after(u, query.sort).encode(query.sort))
        } else {
            None
        };
        Ok(UserPage { users, total, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_render_back() {
        let q = UserQuery::from_params([
            ("limit", "20"),
            ("q", "a%_\\b"),
            ("status", "quota"),
            ("sort", "-usage"),
            ("after", ""),
        ])
        .expect("valid");
        assert_eq!(q.limit, 20);
        assert_eq!(
            q.status,
            Some(UserStatus::DisabledFor(DisableReason::Quota))
        );
        assert_eq!(
            q.sort,
            UserSort {
                key: SortKey::Usage,
                descending: true
            }
        );
        assert_eq!(q.after, None);
        let text = q.to_query_string();
        assert_eq!(text, "limit=20&q=a%25%5F%5Cb&status=quota&sort=%2Dusage");
        assert_eq!(UserQuery::default().to_query_string(), "");
        for (key, value) in [
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "x"),
            ("sort", "usage-"),
            ("sort", "--id"),
            ("status", "Enabled"),
            ("colour", "red"),
        ] {
            let e = UserQuery::from_params([(key, value)]).expect_err(value);
            assert_eq!(e.field(), Some(key), "{key}={value}");
        }
        let e = UserQuery::from_params([("q", "a"), ("q", "b")]).expect_err("twice");
        assert_eq!(e.field(), Some("q"));
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let by_name = UserSort::parse("-name").expect("sort");
        let c = Cursor::Name("a:b".into(), 7);
        assert_eq!(
            Cursor::decode(&c.encode(by_name), by_name).ok(),
            Some(c.clone())
        );
        let by_usage = UserSort::parse("usage").expect("sort");
        assert!(Cursor::decode(&c.encode(by_name), by_usage).is_err());
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for forged in [
            String::new(),
            "!!!".into(),
            b64("usage"),
            b64("usage:1"),
            b64("usage:x:1"),
            b64("usage:1:1e3"),
            b64("id:1:2"),
            "A".repeat(300),
        ] {
            let e = Cursor::decode(&forged, by_usage).expect_err(&forged);
            assert_eq!(e.field(), Some("after"));
        }
        assert_eq!(like_pattern(r"5%_\"), r"%5\%\_\\%");
    }
}
