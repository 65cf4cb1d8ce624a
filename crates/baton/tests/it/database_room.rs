//! A node warns at start when the database server has fewer connections left than the node's pool
//! may open (`database.max_connections`): such a cluster starts fine and fails to connect only
//! under load. The warning names the key and the fix; the node starts all the same, and one whose
//! pool fits says nothing.

use baton_testkit::{Dialect, TestDatabase, free_port};

use crate::child_server::{ChildOptions, ChildServer};

const WARNING: &str = "fewer than its `database.max_connections`";

fn options(env: Vec<(&'static str, String)>) -> ChildOptions {
    ChildOptions { http_port: free_port(), grpc_port: free_port(), no_runner: true, lease_seconds: 4, env }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_larger_than_the_database_allows_is_warned_of_at_start() {
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let db = TestDatabase::create_on(dialect).await;
        let (data, pids) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let big = options(vec![("BATON_DATABASE_MAX_CONNECTIONS", "100000".into())]);
        let srv = ChildServer::start_with(data.path(), pids.path(), &db, &big).await;
        let log = srv.log_text();
        assert!(log.contains(&format!("{WARNING} (100000)")), "{dialect:?}: {log}");
        assert!(log.contains("Raise the database's max_connections"), "{dialect:?}: the fix is named: {log}");
        srv.client.project().await;
        drop(srv);

        let srv = ChildServer::start_with(data.path(), pids.path(), &db, &options(Vec::new())).await;
        assert!(!srv.log_text().contains(WARNING), "{dialect:?}: a pool of 10 fits: {}", srv.log_text());
    }
}
