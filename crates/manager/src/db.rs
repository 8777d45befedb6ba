//! Opening the database: SQLite by default (a file in the data dir, WAL), PostgreSQL by URL.

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::path::Path;
use std::time::Duration;

/// The default URL: `sqlite://<data_dir>/arch.db?mode=rwc`.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("arch.db").display())
}

/// Connects and, for SQLite, switches the file to WAL with a busy timeout.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.max_connections(8).min_connections(1);
        // Writers queue for up to 10 s instead of failing at once under concurrent writes.
        opts.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_secs(10)));
    } else {
        opts.max_connections(16);
    }
    if url.starts_with("sqlite:") {
        private_sqlite_file(url)?;
    }
    let db = Database::connect(opts).await?;
    if db.get_database_backend() == DbBackend::Sqlite && !url.contains(":memory:") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        db.execute_unprepared("PRAGMA synchronous=NORMAL").await?;
    }
    Ok(db)
}

/// Makes the SQLite file of `url` readable by its owner only, before SQLite opens it: a missing
/// file is created empty with mode `0600` (when the URL lets SQLite create it, `mode=rwc`), an
/// existing one and its `-wal` / `-shm` files are narrowed to `0600`. SQLite creates `-wal` and
/// `-shm` with the permissions of the database file, so they follow. In-memory URLs are left alone.
fn private_sqlite_file(url: &str) -> Result<(), DbErr> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let opts = <sea_orm::sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
        .map_err(|e| DbErr::Custom(format!("invalid SQLite URL: {e}")))?;
    let path = opts.get_filename().to_owned();
    let io = |what: &str, p: &Path, e: std::io::Error| {
        DbErr::Custom(format!("{what} {}: {e}", p.display()))
    };
    if !path.exists() {
        if !url.contains("mode=rwc") {
            return Ok(()); // SQLite reports the missing file.
        }
        let mut create = std::fs::OpenOptions::new();
        create.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
        match create.open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("creating", &path, e)),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut files = vec![path.clone()];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            files.push(p.into());
        }
        for p in files {
            let mode = match std::fs::metadata(&p) {
                Ok(m) => m.permissions().mode() & 0o777,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("reading", &p, e)),
            };
            if mode != 0o600 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io("restricting", &p, e))?;
            }
        }
    }
    Ok(())
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so a read-then-write transaction waits for other writers (busy timeout)
/// instead of failing with "database is locked" when its read snapshot went stale. PostgreSQL
/// ignores the mode.
pub async fn write_txn(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_sqlite_files_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = default_sqlite_url(dir.path());
        let db = connect(&url).await.expect("connect");
        db.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .await
            .expect("write");
        let file = dir.path().join("arch.db");
        for p in [
            file.clone(),
            dir.path().join("arch.db-wal"),
            dir.path().join("arch.db-shm"),
        ] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        db.close().await.expect("close");

        // An existing file left readable by others is narrowed on the next start.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let db = connect(&url).await.expect("reconnect");
        assert_eq!(mode(&file), 0o600);
        db.close().await.expect("close");
    }
}
