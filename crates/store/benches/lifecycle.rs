//! The store's per-task write path on each dialect: every store call a task costs from submit
//! to finished — create (INSERT), claim (UPDATE), next log sequence (SELECT), started (UPDATE),
//! one log chunk (transaction: locked SELECT + INSERT), finished (transaction: locked SELECT +
//! UPDATE + INSERT of the attempt). The placement loop's queue read is shared by up to 64 tasks
//! and left out.
//!
//! Three benches per dialect: `one_task_alone`, the time of one task alone (latency of the write
//! path); `sixteen_workers`, 16 tasks at once, each report stored on its own (throughput: divan
//! reports tasks per second); and `sixteen_reported_together`, 16 tasks whose `started` reports
//! and ends are stored together, as a busy runner's are (the dispatcher's group commit). Each
//! dialect also prints the statements a task costs, by kind, from the store's counters.
//!
//! Run: `eval "$(scripts/services.sh)"` once, then `cargo bench -p baton-store` (every dialect;
//! a missing database server fails the bench and names it), or
//! `cargo bench -p baton-store -- sqlite` for one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_core::TaskStatus;
use baton_store::dispatcher::Tables;
use baton_store::dispatcher::batch::Start;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::dispatcher::runners::RunnerSpec;
use baton_store::dispatcher::tasks::NewTask;
use baton_store::{LogLine, LogStream, Options, Store, TaskSpec, now_ms};
use baton_testkit::{Dialect, TestDatabase};
use divan::Bencher;
use divan::counter::ItemsCount;

const DIALECTS: [&str; 3] = ["sqlite", "postgres", "mysql"];
const WORKERS: usize = 16;

fn main() {
    divan::main();
}

/// A migrated store on a fresh database of `dialect`, with one runner; kept with its database.
struct Bed {
    rt: tokio::runtime::Runtime,
    _db: TestDatabase,
    store: Store,
    tables: Tables,
    runner: i64,
}

fn bed(dialect: &str) -> Bed {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dialect = match dialect {
        "postgres" => Dialect::Postgres,
        "mysql" => Dialect::Mysql,
        _ => Dialect::Sqlite,
    };
    let (db, store, tables, runner) = rt.block_on(async {
        let db = TestDatabase::create_on(dialect).await;
        let opts = Options {
            url: db.url.clone(),
            max_connections: WORKERS as u32,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        };
        let store = Store::connect(&opts).await.unwrap();
        store.migrate().await.unwrap();
        let tables = Tables::new(store.clone());
        let labels: Vec<String> = Vec::new();
        let spec = RunnerSpec { name: "bench", labels: &labels, capacity: 1000, secret_hash: &"0".repeat(64) };
        let runner = tables.ensure_runner(spec).await.unwrap().id;
        (db, store, tables, runner)
    });
    let bed = Bed { rt, _db: db, store, tables, runner };
    bed.print_statements();
    bed
}

impl Bed {
    /// Runs 50 tasks (warming the pool and the caches) and prints what each cost, by kind.
    fn print_statements(&self) {
        let before: Vec<u64> = self.store.statement_counts().snapshot().map(|(_, n)| n).collect();
        self.rt.block_on(async {
            for _ in 0..50 {
                one_task(&self.tables, self.runner).await;
            }
        });
        let per_task: Vec<String> = self
            .store
            .statement_counts()
            .snapshot()
            .zip(before)
            .filter(|((_, n), before)| n > before)
            .map(|((k, n), before)| format!("{} {:.2}", k.as_str(), (n - before) as f64 / 50.0))
            .collect();
        eprintln!("{}: statements per task: {}", self.store.dialect(), per_task.join(", "));
    }
}

/// The task every bench creates: one attempt of `true`.
fn new_task() -> NewTask {
    NewTask {
        project_id: 1,
        template_id: 1,
        spec: TaskSpec { script: "true".into(), shell: "bash".into(), ..Default::default() },
        priority: 0,
        max_attempts: 1,
        template_max_parallel: 0,
        project_max_parallel: 0,
        schedule_id: None,
        created_by: None,
    }
}

async fn one_task(t: &Tables, runner: i64) {
    let task = t.create_task(new_task()).await.unwrap();
    let epoch = t.claim(task.id, task.epoch, runner).await.unwrap().expect("claimed");
    let fence = Fence { task_id: task.id, epoch, runner_id: runner };
    let first = t.next_log_seq(task.id).await.unwrap();
    assert!(t.mark_running(fence, now_ms()).await.unwrap());
    let line = LogLine { seq: first, time_ms: now_ms(), stream: LogStream::Stdout, text: "hello".into() };
    t.append_log(fence, &[line]).await.unwrap();
    let fin = Finish { fence, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None };
    assert!(t.finish(fin).await.unwrap());
}

#[divan::bench(args = DIALECTS, sample_count = 30, sample_size = 10)]
fn one_task_alone(bencher: Bencher, dialect: &str) {
    let b = bed(dialect);
    bencher.bench_local(|| b.rt.block_on(one_task(&b.tables, b.runner)));
}

#[divan::bench(args = DIALECTS, sample_count = 20, sample_size = 2)]
fn sixteen_workers(bencher: Bencher, dialect: &str) {
    let b = bed(dialect);
    bencher.counter(ItemsCount::new(WORKERS)).bench_local(|| {
        b.rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..WORKERS {
                let (t, r) = (b.tables.clone(), b.runner);
                set.spawn(async move { one_task(&t, r).await });
            }
            while set.join_next().await.is_some() {}
        })
    });
}

#[divan::bench(args = DIALECTS, sample_count = 20, sample_size = 2)]
fn sixteen_reported_together(bencher: Bencher, dialect: &str) {
    let b = bed(dialect);
    bencher.counter(ItemsCount::new(WORKERS)).bench_local(|| b.rt.block_on(reported_together(&b.tables, b.runner)));
}

/// `WORKERS` tasks created, claimed and given a log chunk each as their own calls come (16 at
/// once), with their `started` reports stored in one call and their ends in another.
async fn reported_together(t: &Tables, runner: i64) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let t = t.clone();
        set.spawn(async move {
            let task = t.create_task(new_task()).await.unwrap();
            let epoch = t.claim(task.id, task.epoch, runner).await.unwrap().expect("claimed");
            Fence { task_id: task.id, epoch, runner_id: runner }
        });
    }
    let fences: Vec<Fence> = set.join_all().await;
    let starts: Vec<Start> = fences.iter().map(|f| Start { fence: *f, at: now_ms() }).collect();
    assert!(t.report_started_many(&starts).await.unwrap().iter().all(Option::is_some));
    let mut set = tokio::task::JoinSet::new();
    for fence in fences.clone() {
        let t = t.clone();
        set.spawn(async move {
            let line = LogLine { seq: 1, time_ms: now_ms(), stream: LogStream::Stdout, text: "hello".into() };
            t.append_log(fence, &[line]).await.unwrap();
        });
    }
    set.join_all().await;
    let ends: Vec<Finish> = fences
        .into_iter()
        .map(|fence| Finish { fence, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None })
        .collect();
    assert!(t.report_finished_many(&ends).await.unwrap().iter().all(Option::is_some));
}
