//! Migrations: applying them twice is harmless and leaves a working schema.

use baton_migration::MigratorTrait;

use crate::support;

#[tokio::test]
async fn migrate_twice_is_idempotent() {
    let db = support::connect().await;
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ping().await.unwrap();
    let expected = match baton_testkit::Dialect::current() {
        baton_testkit::Dialect::Sqlite => "sqlite",
        baton_testkit::Dialect::Postgres => "postgres",
        baton_testkit::Dialect::Mysql => "mysql",
    };
    assert_eq!(db.store.dialect(), expected);
    // The schema still works after the second run.
    let gw = db.gateway();
    assert_eq!(gw.count_users().await.unwrap(), 0);
    let p = gw.create_project("p", "", 1).await.unwrap();
    assert_eq!(gw.project(p.id).await.unwrap().name, "p");
}

/// Nodes that start together all migrate at once: the lock makes them take turns, every one of
/// them ends with the full schema, and together they applied each migration once. What each
/// reports applying is read under the lock: listing used to create the bookkeeping table before
/// the lock was taken, and two creations of one table collide in PostgreSQL's catalog
/// (`pg_type_typname_nsp_index`).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migrations_take_turns() {
    let first = support::connect().await;
    let mut nodes = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let store = support::connect_to(first.url()).await;
        nodes.spawn(async move { store.migrate().await });
    }
    let mut applied = Vec::new();
    while let Some(r) = nodes.join_next().await {
        applied.extend(r.unwrap().unwrap());
    }
    let mut all: Vec<String> = baton_migration::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    applied.sort();
    all.sort();
    assert_eq!(applied, all, "each migration applied once");
    let pending = first.store.pending_migrations().await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
    assert_eq!(first.store.applied_migrations().await.unwrap().len(), baton_migration::Migrator::migrations().len());
    first.gateway().create_project("works", "", 0).await.unwrap();
}

/// A database migrated by a newer Baton is refused with a message saying so.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    use sea_orm::ConnectionTrait;
    let db = support::db().await;
    db.store
        .conn()
        .execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m9999_from_the_future', 0)")
        .await
        .unwrap();
    let err = db.store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("newer than this binary") && err.contains("m9999_from_the_future"), "{err}");
}

/// Listing migrations reads and never creates: on a new database nothing exists afterwards.
#[tokio::test]
async fn listing_migrations_creates_nothing() {
    use sea_orm::{ConnectionTrait, Statement};
    let db = support::connect().await;
    assert!(db.store.applied_migrations().await.unwrap().is_empty());
    assert_eq!(db.store.pending_migrations().await.unwrap().len(), baton_migration::Migrator::migrations().len());
    let backend = db.store.conn().get_database_backend();
    let probe = Statement::from_string(backend, "SELECT COUNT(*) FROM seaql_migrations");
    assert!(db.store.conn().query_one_raw(probe).await.is_err(), "the bookkeeping table was created by a listing");
}
