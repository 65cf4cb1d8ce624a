//! Tasks per second through the store alone: each worker plays a dispatcher and a runner for one
//! task at a time, issuing exactly the store calls a task costs from submit to finished:
//! create (INSERT), claim (UPDATE), next log sequence (SELECT), started (UPDATE), one log chunk
//! (transaction: locked SELECT + INSERT), finished (transaction: locked SELECT + UPDATE + INSERT of
//! the attempt). The placement loop's queue read is shared by up to 64 tasks and left out.
//!
//! It prints the statements each task cost, by kind, beside the rate.
//!
//! Run: `BATON_TEST_DATABASE=postgres cargo bench -p baton-store` (after
//! `eval "$(scripts/services.sh)"`); `sqlite` and `mysql` work too. `BATON_BENCH_TASKS` and
//! `BATON_BENCH_WORKERS` set the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_core::TaskStatus;
use baton_store::dispatcher::Tables;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::dispatcher::runners::RunnerSpec;
use baton_store::dispatcher::tasks::NewTask;
use baton_store::{LogLine, LogStream, Options, Store, TaskSpec, now_ms};
use baton_testkit::TestDatabase;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn one_task(t: &Tables, runner: i64) {
    let spec = TaskSpec { script: "true".into(), shell: "bash".into(), ..Default::default() };
    let new = NewTask {
        project_id: 1,
        template_id: 1,
        spec,
        priority: 0,
        max_attempts: 1,
        template_max_parallel: 0,
        project_max_parallel: 0,
        schedule_id: None,
        created_by: None,
    };
    let task = t.create_task(new).await.unwrap();
    let epoch = t.claim(task.id, task.epoch, runner).await.unwrap().expect("claimed");
    let fence = Fence { task_id: task.id, epoch, runner_id: runner };
    let first = t.next_log_seq(task.id).await.unwrap();
    assert!(t.mark_running(fence, now_ms()).await.unwrap());
    let line = LogLine { seq: first, time_ms: now_ms(), stream: LogStream::Stdout, text: "hello".into() };
    t.append_log(fence, &[line]).await.unwrap();
    let fin = Finish { fence, status: TaskStatus::Succeeded, exit_code: Some(0), error: None };
    assert!(t.finish(fin).await.unwrap());
}

fn main() {
    // `cargo bench` passes --bench; test runners that list or run every target do not.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tasks = env_or("BATON_BENCH_TASKS", 5000);
        let workers = env_or("BATON_BENCH_WORKERS", 16);
        let db = TestDatabase::create().await;
        let opts = Options {
            url: db.url.clone(),
            max_connections: workers as u32,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        };
        let store = Store::connect(&opts).await.unwrap();
        store.migrate().await.unwrap();
        let t = Tables::new(store.clone());
        let labels: Vec<String> = Vec::new();
        let spec = RunnerSpec { name: "bench", labels: &labels, capacity: 1000, secret_hash: &"0".repeat(64) };
        let runner = t.ensure_runner(spec).await.unwrap().id;
        // Warm the pool and the caches.
        for _ in 0..50 {
            one_task(&t, runner).await;
        }
        let counts_before: Vec<u64> = store.statement_counts().snapshot().map(|(_, n)| n).collect();
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for w in 0..workers {
            let t = t.clone();
            let n = tasks / workers + usize::from(w < tasks % workers);
            set.spawn(async move {
                for _ in 0..n {
                    one_task(&t, runner).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        let secs = start.elapsed().as_secs_f64();
        println!(
            "store lifecycle on {}: {tasks} tasks, {workers} workers, {secs:.2}s, {:.0} tasks/s",
            store.dialect(),
            tasks as f64 / secs
        );
        // Statements per task, by kind: what a change to the write path saves, whatever the machine.
        let per_task: Vec<String> = store
            .statement_counts()
            .snapshot()
            .zip(counts_before)
            .filter(|((_, n), before)| n > before)
            .map(|((k, n), before)| format!("{} {:.2}", k.as_str(), (n - before) as f64 / tasks as f64))
            .collect();
        println!("statements per task: {}", per_task.join(", "));
    });
}
