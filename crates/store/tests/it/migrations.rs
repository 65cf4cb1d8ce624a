//! Migrations: applying them twice is harmless and leaves a working schema.

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
