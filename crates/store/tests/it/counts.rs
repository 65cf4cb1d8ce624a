//! The statement counters behind `baton_sql_statements_total`: every statement sent through the
//! store is counted by its kind, on every dialect, also inside transactions.

use baton_core::TaskStatus;
use baton_store::dispatcher::reports::Finish;
use baton_store::{StatementKind, Store, now_ms};

use crate::support::{self, assigned_task, fence, runner};

fn count(store: &Store, kind: StatementKind) -> u64 {
    store.statement_counts().snapshot().find(|(k, _)| *k == kind).map_or(0, |(_, n)| n)
}

#[tokio::test]
async fn statements_are_counted_by_kind_also_inside_transactions() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    let f = fence(&t, task.id, task.epoch).await;

    let kinds = [StatementKind::Select, StatementKind::Update, StatementKind::Transaction];
    let before = kinds.map(|k| count(&db.store, k));
    assert!(t.mark_running(f, now_ms()).await.unwrap());
    let after_started = kinds.map(|k| count(&db.store, k));
    assert!(after_started[1] > before[1], "starting a task updates it: {before:?} → {after_started:?}");

    // Finishing runs in one transaction that reads the task (locked) and writes it and its attempt.
    let fin = Finish { fence: f, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None };
    assert!(t.finish(fin).await.unwrap());
    let after = kinds.map(|k| count(&db.store, k));
    assert_eq!(after[2], after_started[2] + 1, "one transaction: {after_started:?} → {after:?}");
    assert!(after[0] > after_started[0], "the read inside the transaction is counted");
    assert!(after[1] > after_started[1], "the write inside the transaction is counted");
    assert!(count(&db.store, StatementKind::Insert) > 0, "the task and its runner were inserted");
}

#[tokio::test]
async fn the_store_counts_every_connection_its_pool_opens() {
    let db = support::db().await;
    assert!(db.store.connections_opened() >= 1, "the pool's first connection is counted");
    // Transactions open at once hold a connection each: the pool opens more, and counts them.
    let held: Vec<_> =
        futures::future::join_all((0..3).map(|_| sea_orm::TransactionTrait::begin(db.store.conn()))).await;
    assert!(held.iter().all(Result::is_ok));
    assert!(db.store.connections_opened() >= 3, "{} opened", db.store.connections_opened());
}

#[tokio::test]
async fn the_database_server_tells_its_connection_limit_and_what_is_open() {
    let db = support::db().await;
    let Some(room) = db.store.connection_room().await.unwrap() else {
        assert_eq!(db.store.dialect(), "sqlite", "only SQLite has no server to ask");
        return;
    };
    assert!(room.limit > 0 && room.open >= 1, "{room:?}");
    assert!(db.store.pool_size() >= 1);
    // Connections held at once by this pool show among those open (other tests' come and go,
    // so this one's are a floor, not an exact count).
    let held: Vec<_> =
        futures::future::join_all((0..3).map(|_| sea_orm::TransactionTrait::begin(db.store.conn()))).await;
    assert!(held.iter().all(Result::is_ok));
    let now = db.store.connection_room().await.unwrap().unwrap();
    assert!(now.open >= 3 && db.store.pool_size() >= 3, "{now:?}, pool {}", db.store.pool_size());
    assert_eq!(now.limit, room.limit, "the limit is the server's setting");
}

#[tokio::test]
async fn a_role_without_rights_to_others_sessions_still_sees_every_connection() {
    let db = support::db().await;
    if db.store.dialect() != "postgres" {
        // MySQL's and MariaDB's `Threads_connected` counts every client for any user.
        return;
    }
    // A node's own role, as a rule: PostgreSQL hides other roles' sessions from it.
    let role = format!("room_{}", std::process::id());
    let admin = db.store.conn();
    let _ = sea_orm::ConnectionTrait::execute_unprepared(admin, &format!("DROP ROLE IF EXISTS {role}")).await;
    sea_orm::ConnectionTrait::execute_unprepared(admin, &format!("CREATE ROLE {role} LOGIN PASSWORD 'room'"))
        .await
        .unwrap();
    let (scheme, rest) = db.url().split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let plain = support::connect_to(&format!("{scheme}://{role}:room@{host}")).await;
    let held: Vec<_> =
        futures::future::join_all((0..3).map(|_| sea_orm::TransactionTrait::begin(db.store.conn()))).await;
    assert!(held.iter().all(Result::is_ok));
    let room = plain.connection_room().await.unwrap().unwrap();
    assert!(room.open >= 4, "the other role's three and this one: {room:?}");
    drop(held);
    plain.conn().clone().close().await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(admin, &format!("DROP ROLE {role}")).await.unwrap();
}
