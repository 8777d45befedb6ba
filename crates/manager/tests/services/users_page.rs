//! Paged user lists (`UserService::page`): every sort both ways walked page by page against the
//! order computed here from the seeded rows (ties in usage and creation time broken by id), the
//! status and reason filters, a literal search (`%`, `_`, `\`), the total, and refusals naming
//! the field.

use super::{field, open};
use manager::entity::user;
use manager::services::users::{SortKey, UserPage, UserQuery, UserSort, UserStatus};
use manager::{NewUser, ServiceError, User, UserService};
use rules::DisableReason;
use sea_orm::{ActiveModelTrait, Set};
use std::cmp::Ordering;

const USERS: usize = 120;
const SORTS: [&str; 8] = [
    "id", "-id", "name", "-name", "usage", "-usage", "created", "-created",
];

/// 120 users: five name shapes (`alpha_…` and `alphax…` tell a literal `_` from the wildcard,
/// `Beta-…` and `beta.…` a case-insensitive match), five usages and eight creation times (many
/// ties), and a status cycle (manual, quota, expired, then enabled). Three names are rewritten
/// in the database to hold `%` and `\`, which the input rules refuse but older rows may have.
async fn seed(users: &UserService, db: &manager::DatabaseConnection) -> Vec<User> {
    let prefixes = ["alpha_", "alphax", "Beta-", "beta.", "gamma@"];
    for i in 0..USERS {
        users
            .create(NewUser {
                name: format!("{}{:03}", prefixes[i % prefixes.len()], (i * 53) % 1000),
                ..Default::default()
            })
            .await
            .expect("create");
    }
    let created = users.list().await.expect("list");
    assert_eq!(created.len(), USERS);
    let base = 1_700_000_000_000i64;
    for (i, u) in created.iter().enumerate() {
        let (enabled, reason) = match i % 6 {
            0 => (false, Some(DisableReason::Manual)),
            1 => (false, Some(DisableReason::Quota)),
            2 => (false, Some(DisableReason::Expired)),
            _ => (true, None),
        };
        let mut am = user::ActiveModel {
            id: Set(u.id),
            usage_bytes: Set(((i * 37) % 5) as i64 * 1000),
            created_at: Set(base + (i % 8) as i64),
            enabled: Set(enabled),
            disabled_reason: Set(reason),
            ..Default::default()
        };
        match i {
            10 => am.name = Set("50%off".into()),
            11 => am.name = Set("50xoff".into()),
            12 => am.name = Set(r"back\slash".into()),
            _ => {}
        }
        am.update(db).await.expect("seed row");
    }
    users.list().await.expect("list")
}

/// The order `sort` must give, ties by id.
fn sorted(mut rows: Vec<User>, sort: UserSort) -> Vec<i64> {
    let key = |a: &User, b: &User| -> Ordering {
        match sort.key {
            SortKey::Id => Ordering::Equal,
            SortKey::Name => a.name.as_bytes().cmp(b.name.as_bytes()),
            SortKey::Usage => a.usage_bytes.cmp(&b.usage_bytes),
            SortKey::Created => a.created_at.cmp(&b.created_at),
        }
        .then(a.id.cmp(&b.id))
    };
    rows.sort_by(|a, b| {
        let o = key(a, b);
        if sort.descending {
            o.reverse()
        } else {
            o
        }
    });
    rows.into_iter().map(|u| u.id).collect()
}

/// Every page of `query` from the first; asserts the total on each page and that only the
/// last has no `next`.
async fn walk(users: &UserService, query: UserQuery) -> (Vec<i64>, u64) {
    let mut ids = Vec::new();
    let mut query = query;
    let mut total = None;
    for _ in 0..=USERS {
        let UserPage {
            users: page,
            total: t,
            next,
        } = users.page(query.clone()).await.expect("page");
        assert_eq!(*total.get_or_insert(t), t, "the total ignores the cursor");
        assert!(page.len() <= query.limit as usize);
        if next.is_some() {
            assert_eq!(
                page.len(),
                query.limit as usize,
                "only the last page is short"
            );
        }
        ids.extend(page.iter().map(|u| u.id));
        match next {
            Some(next) => query.after = Some(next),
            None => return (ids, total.unwrap_or(0)),
        }
    }
    panic!("the walk did not end");
}

fn query(params: &[(&str, &str)]) -> UserQuery {
    UserQuery::from_params(params.iter().copied()).expect("valid query")
}

#[tokio::test]
async fn every_sort_walks_each_user_once_in_order() {
    let t = open().await;
    let users = &t.manager.services.users;
    let rows = seed(users, &t.manager.db).await;
    for sort in SORTS {
        let parsed = UserSort::parse(sort).expect("sort");
        let expected = sorted(rows.clone(), parsed);
        for limit in ["7", "50"] {
            let (ids, total) = walk(users, query(&[("sort", sort), ("limit", limit)])).await;
            assert_eq!(total, USERS as u64);
            assert_eq!(ids, expected, "sort={sort} limit={limit}");
        }
    }
    // The default: by id, 50 a page.
    let first = users.page(UserQuery::default()).await.expect("page");
    assert_eq!(first.users.len(), 50);
    assert_eq!(first.total, USERS as u64);
    let mut ids: Vec<i64> = rows.iter().map(|u| u.id).collect();
    ids.sort_unstable();
    assert_eq!(
        first.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[..50]
    );
}

#[tokio::test]
async fn filters_and_literal_search() {
    let t = open().await;
    let users = &t.manager.services.users;
    let rows = seed(users, &t.manager.db).await;
    let matching = |status: Option<UserStatus>, q: &str| -> Vec<User> {
        rows.iter()
            .filter(|u| match status {
                None => true,
                Some(UserStatus::Enabled) => u.enabled,
                Some(UserStatus::Disabled) => !u.enabled,
                Some(UserStatus::DisabledFor(r)) => !u.enabled && u.disabled_reason == Some(r),
            })
            .filter(|u| u.name.to_lowercase().contains(&q.to_lowercase()))
            .cloned()
            .collect()
    };
    for status in ["enabled", "disabled", "quota", "expired", "manual"] {
        let parsed = UserStatus::parse(status);
        let want = matching(parsed, "");
        assert!(!want.is_empty(), "{status}: the seed covers it");
        for sort in ["-usage", "name", "created"] {
            let (ids, total) = walk(
                users,
                query(&[("status", status), ("sort", sort), ("limit", "4")]),
            )
            .await;
            assert_eq!(total, want.len() as u64, "status={status}");
            let expected = sorted(want.clone(), UserSort::parse(sort).expect("sort"));
            assert_eq!(ids, expected, "status={status} sort={sort}");
        }
    }
    assert_eq!(
        matching(Some(UserStatus::Enabled), "").len()
            + matching(Some(UserStatus::Disabled), "").len(),
        USERS
    );

    // `_`, `%` and `\` match themselves; letters match in any case.
    let names = |q: &str, status: Option<&str>| {
        let mut params = vec![("q", q), ("limit", "500")];
        if let Some(s) = status {
            params.push(("status", s));
        }
        let q = query(&params);
        async move {
            let page = users.page(q).await.expect("search");
            assert_eq!(page.total as usize, page.users.len());
            assert!(page.next.is_none());
            page.users.into_iter().map(|u| u.name).collect::<Vec<_>>()
        }
    };
    let underscore = names("a_", None).await;
    assert_eq!(underscore.len(), matching(None, "a_").len());
    assert!(!underscore.is_empty());
    assert!(
        underscore.iter().all(|n| n.contains("a_")),
        "{underscore:?}"
    );
    assert_eq!(names("0%o", None).await, ["50%off"]);
    assert_eq!(names("%", None).await, ["50%off"]);
    assert_eq!(names(r"\", None).await, [r"back\slash"]);
    assert_eq!(names(r"k\s", None).await, [r"back\slash"]);
    assert!(names("%%", None).await.is_empty());
    let beta = names("BETA", None).await;
    assert_eq!(beta.len(), matching(None, "beta").len());
    assert!(
        beta.iter().any(|n| n.starts_with("Beta-")) && beta.iter().any(|n| n.starts_with("beta."))
    );
    let beta_quota = names("bEtA", Some("quota")).await;
    assert_eq!(
        beta_quota.len(),
        matching(Some(UserStatus::DisabledFor(DisableReason::Quota)), "beta").len()
    );
    // A search walked page by page by name, descending.
    let want = matching(None, "ALPHA");
    let (ids, total) = walk(
        users,
        query(&[("q", "ALPHA"), ("sort", "-name"), ("limit", "3")]),
    )
    .await;
    assert_eq!(total, want.len() as u64);
    assert_eq!(ids, sorted(want, UserSort::parse("-name").expect("sort")));
    assert!(names("nobody", None).await.is_empty());
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_field() {
    let t = open().await;
    let users = &t.manager.services.users;
    seed(users, &t.manager.db).await;
    let refused = |params: &[(&str, &str)]| {
        UserQuery::from_params(params.iter().copied())
            .expect_err("refused")
            .field()
            .unwrap_or("<none>")
            .to_owned()
    };
    assert_eq!(refused(&[("limit", "0")]), "limit");
    assert_eq!(refused(&[("limit", "501")]), "limit");
    assert_eq!(refused(&[("limit", "-1")]), "limit");
    assert_eq!(refused(&[("limit", "ten")]), "limit");
    assert_eq!(refused(&[("sort", "email")]), "sort");
    assert_eq!(refused(&[("sort", "-")]), "sort");
    assert_eq!(refused(&[("status", "active")]), "status");
    assert_eq!(refused(&[("q", &"x".repeat(65))]), "q");
    assert_eq!(refused(&[("page", "2")]), "page");
    assert_eq!(refused(&[("sort", "id"), ("sort", "name")]), "sort");

    // A typed query is checked too.
    for limit in [0, 501] {
        let e = users
            .page(UserQuery {
                limit,
                ..Default::default()
            })
            .await
            .expect_err("limit");
        assert!(matches!(&e, ServiceError::Invalid { .. }) && field(&e) == "limit");
    }
    // Malformed, forged and foreign cursors: refused as `after`, nothing panics.
    let by_usage = query(&[("sort", "usage"), ("limit", "5")]);
    let next = users
        .page(by_usage.clone())
        .await
        .expect("page")
        .next
        .expect("a next page");
    for after in [
        "not base64!".to_owned(),
        "AAAA".to_owned(),
        "x".repeat(1000),
        next.clone() + "A",
    ] {
        let e = users
            .page(UserQuery {
                after: Some(after.clone()),
                ..by_usage.clone()
            })
            .await
            .expect_err(&after);
        assert!(
            matches!(&e, ServiceError::Invalid { .. }) && field(&e) == "after",
            "{after}: {e:?}"
        );
    }
    let foreign = users
        .page(query(&[("sort", "-usage"), ("after", &next)]))
        .await
        .expect_err("a cursor of another sort");
    assert_eq!(field(&foreign), "after");
    // The cursor still works with its own sort.
    let second = users
        .page(UserQuery {
            after: Some(next),
            ..by_usage
        })
        .await
        .expect("second page");
    assert_eq!(second.users.len(), 5);
}

/// On PostgreSQL the migration gives the name search its trigram index (`pg_trgm` ships with
/// Debian's PostgreSQL, which the tests run on), on the expression the search filters by. SQLite
/// has no such index: nothing to check there.
#[tokio::test]
async fn postgres_has_the_trigram_index_of_the_search() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let t = open().await;
    let db = &t.manager.db;
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_users_name_trgm'",
        ))
        .await
        .expect("pg_indexes");
    let defs: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "indexdef").expect("indexdef"))
        .collect();
    assert_eq!(
        defs,
        ["CREATE INDEX idx_users_name_trgm ON public.users USING gin (lower((name)::text) gin_trgm_ops)"]
    );
}
