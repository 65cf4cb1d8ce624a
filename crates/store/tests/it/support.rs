//! Test support: a fresh, migrated store on a database of its own (of the dialect this run tests:
//! `BATON_TEST_DATABASE`), and task fixtures.

use std::time::Duration;

use baton_store::dispatcher::Tables;
use baton_store::dispatcher::reports::Fence;
use baton_store::dispatcher::runners::RunnerSpec;
use baton_store::dispatcher::tasks::NewTask;
use baton_store::entity::task;
use baton_store::{Options, Store, TaskSpec};
use baton_testkit::TestDatabase;

/// A store on its own database; the database lives as long as this value.
pub struct TestDb {
    pub store: Store,
    _db: TestDatabase,
}

impl TestDb {
    pub fn url(&self) -> &str {
        self.db_url()
    }

    fn db_url(&self) -> &str {
        &self._db.url
    }

    pub fn dispatcher(&self) -> Tables {
        Tables::new(self.store.clone())
    }

    pub fn gateway(&self) -> baton_store::gateway::Tables {
        baton_store::gateway::Tables::new(self.store.clone())
    }
}

/// Connects to a new database without migrating.
pub async fn connect() -> TestDb {
    let db = TestDatabase::create().await;
    let store = connect_to(&db.url).await;
    TestDb { store, _db: db }
}

/// Another pool on an existing database, as a second node would have.
pub async fn connect_to(url: &str) -> Store {
    let opts = Options {
        url: url.to_owned(),
        max_connections: 4,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(30),
    };
    Store::connect(&opts).await.unwrap()
}

/// Connects to a new database and applies every migration.
pub async fn db() -> TestDb {
    let db = connect().await;
    db.store.migrate().await.unwrap();
    db
}

/// A task of `project_id`/`template_id` with the given priority and attempts.
pub fn new_task(project_id: i64, template_id: i64, priority: i32, max_attempts: i32) -> NewTask {
    NewTask {
        project_id,
        template_id,
        spec: TaskSpec {
            script: "echo hi".into(),
            shell: "sh".into(),
            env: [("A".to_owned(), "1".to_owned())].into(),
            labels: vec!["linux".into()],
            timeout_seconds: 30,
            secrets: Vec::new(),
        },
        priority,
        max_attempts,
        template_max_parallel: 0,
        project_max_parallel: 0,
        schedule_id: None,
        created_by: Some(7),
    }
}

/// Creates (or re-keys) a runner named `name`.
pub async fn runner(t: &Tables, name: &str) -> i64 {
    let labels = vec!["linux".to_owned()];
    let spec = RunnerSpec { name, labels: &labels, capacity: 2, secret_hash: &"0".repeat(64) };
    t.ensure_runner(spec).await.unwrap().id
}

/// The report of whichever runner holds `task_id` now, about its attempt at `epoch`.
pub async fn fence(t: &Tables, task_id: i64, epoch: i64) -> Fence {
    let runner_id = t.task(task_id).await.ok().and_then(|r| r.runner_id).unwrap_or(0);
    Fence { task_id, epoch, runner_id }
}

/// A task created and claimed by `runner_id`; returns the row after the claim.
pub async fn assigned_task(t: &Tables, runner_id: i64, max_attempts: i32) -> task::Model {
    let created = t.create_task(new_task(1, 1, 0, max_attempts)).await.unwrap();
    let epoch = t.claim(created.id, created.epoch, runner_id).await.unwrap().unwrap();
    let row = t.task(created.id).await.unwrap();
    assert_eq!(row.epoch, epoch);
    row
}

/// How many statements of `kind` this store has sent so far.
pub fn statements(store: &Store, kind: baton_store::StatementKind) -> u64 {
    store.statement_counts().snapshot().filter(|(k, _)| *k == kind).map(|(_, n)| n).sum()
}
