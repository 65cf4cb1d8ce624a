//! `baton bench`: submits tasks to a running Baton through its HTTP API, follows them through the
//! event WebSocket like any client, and reports how long each took from the POST to the script's
//! start (as the runner recorded it) and to the bench receiving its first log line, the event
//! delivery latency (a line stored → received), all as p50/p95/p99, the throughput until all
//! finished, and what each task cost the servers (CPU and SQL statements, from their `/metrics`). `--concurrency` bounds the tasks in flight: 1 measures latency on an idle system,
//! more measures throughput.

mod cost;
mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Base URL of the HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// An API token (or use --username/--password).
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = "admin")]
    username: String,
    #[arg(long)]
    password: Option<String>,
    /// How many tasks to run.
    #[arg(long, default_value_t = 100)]
    tasks: usize,
    /// How many tasks may be in flight at once (1 measures latency on an idle system).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// The script each task runs.
    #[arg(long, default_value = "echo started")]
    script: String,
    /// Follow only the project's task events, not each task's log (no line figures): what a
    /// run costs the servers when nobody watches every log line by line.
    #[arg(long)]
    no_logs: bool,
    /// A node's metrics URL, once per server process (default: `<url>/metrics`, right for a
    /// single node). Through a load balancer, list every node's own address.
    #[arg(long = "metrics", value_name = "URL")]
    metrics: Vec<String>,
}

/// What the bench learns about one task.
struct Sample {
    to_start_ms: f64,
    to_first_line_ms: Option<f64>,
}

/// A token for the WebSocket: the one given, or one made for the run (and deleted after).
async fn ws_token(api: &Api, args: &BenchArgs) -> anyhow::Result<(String, Option<i64>)> {
    if let Some(t) = &args.token {
        return Ok((t.clone(), None));
    }
    let t = api.post("/api/v1/tokens", json!({"name": "bench", "expires_in_seconds": 86_400})).await?;
    Ok((t["token"].as_str().context("token")?.to_owned(), t["id"].as_i64()))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.tasks == 0 || args.concurrency == 0 {
        bail!("--tasks and --concurrency must be at least 1");
    }
    let api = Api::connect(&args).await?;
    let stamp = Utc::now().format("%Y%m%d-%H%M%S%.3f");
    let project = api.post("/api/v1/projects", json!({"name": format!("bench-{stamp}")})).await?;
    let pid = project["id"].as_i64().context("project id")?;
    let template =
        api.post(&format!("/api/v1/projects/{pid}/templates"), json!({"name": "bench", "script": args.script})).await?;
    let tid = template["id"].as_i64().context("template id")?;

    let bar = ProgressBar::new(args.tasks as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tasks finished ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (token, made) = ws_token(&api, &args).await?;
    let watch = watch::Watch::start(&api.base, &token, pid, !args.no_logs).await?;
    let metrics = metrics_urls(&args, &api.base);
    let before = match cost::scrape_all(&api.client, &metrics).await {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("server cost not measured: {e:#}");
            None
        }
    };
    let started = Instant::now();
    run_tasks(&api, &args, pid, tid, &watch, &bar).await?;
    let elapsed = started.elapsed();
    // Read before the clean-up below, which is no part of the run.
    let cost = match before {
        Some(before) => match cost::scrape_all(&api.client, &metrics).await {
            Ok(after) => cost::report(&metrics, &before, &after, args.tasks),
            Err(e) => vec![format!("server cost not measured: {e:#}")],
        },
        None => Vec::new(),
    };
    bar.finish_and_clear();
    let (finals, mut delivery) = watch.results();

    let mut samples = Vec::with_capacity(finals.len());
    let mut failed = 0;
    for (id, seen) in &finals {
        if seen.task["status"] != "succeeded" {
            failed += 1;
            eprintln!("task {id} ended {}: {}", seen.task["status"], seen.task["error"]);
            continue;
        }
        samples.push(Sample {
            to_start_ms: since(seen.t0, &seen.task["started_at"]).unwrap_or(f64::NAN),
            to_first_line_ms: seen.first_line.map(|t| ms_between(seen.t0, t)),
        });
    }
    if let Some(id) = made {
        let _ = api.client.delete(format!("{}/api/v1/tokens/{id}", api.base)).send().await;
    }
    let _ = api.client.delete(format!("{}/api/v1/projects/{pid}", api.base)).send().await;
    report(&args, &samples, &mut delivery, failed, elapsed);
    for line in cost {
        println!("{line}");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The metrics URLs to read: those given, or the API's own node's.
fn metrics_urls(args: &BenchArgs, base: &str) -> Vec<String> {
    if args.metrics.is_empty() { vec![format!("{base}/metrics")] } else { args.metrics.clone() }
}

/// Milliseconds from `t0` to the RFC 3339 time in `v`.
fn since(t0: SystemTime, v: &Value) -> Option<f64> {
    let t: DateTime<Utc> = v.as_str()?.parse().ok()?;
    let t: SystemTime = t.into();
    Some(t.duration_since(t0).map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64()) * 1000.0)
}

/// Milliseconds from `a` to `b` (negative if `b` is earlier).
fn ms_between(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64()) * 1000.0
}

/// Submits the tasks, at most `concurrency` unfinished at once (the watcher frees a slot when a
/// task's end arrives), and waits until every one has ended.
async fn run_tasks(
    api: &Api,
    args: &BenchArgs,
    pid: i64,
    tid: i64,
    watch: &watch::Watch,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let progress = {
        let (watch, bar) = (watch.clone(), bar.clone());
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                bar.set_position(watch.finished() as u64);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
    };
    // Each slot submits on its own (the POSTs of different slots overlap, like independent
    // clients), and is free again once its task has ended.
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..args.tasks {
        let permit = gate.clone().acquire_owned().await?;
        while let Some(done) = posts.try_join_next() {
            done??;
        }
        let (api, watch) = (api.clone(), watch.clone());
        posts.spawn(async move {
            let t0 = SystemTime::now();
            let task = api.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid})).await?;
            watch.submitted(task["id"].as_i64().context("task id")?, t0, permit);
            anyhow::Ok(())
        });
    }
    while let Some(done) = posts.join_next().await {
        done??;
    }
    watch.wait(args.tasks).await?;
    drop(progress);
    Ok(())
}

fn report(args: &BenchArgs, samples: &[Sample], delivery: &mut Vec<f64>, failed: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "tasks {}  concurrency {}  failed {failed}  wall {secs:.2}s  throughput {:.1} tasks/s",
        args.tasks,
        args.concurrency,
        args.tasks as f64 / secs
    );
    println!("{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}", "latency (ms)", "min", "p50", "p95", "p99", "max");
    let mut start: Vec<f64> = samples.iter().map(|s| s.to_start_ms).filter(|v| v.is_finite()).collect();
    let mut line: Vec<f64> = samples.iter().filter_map(|s| s.to_first_line_ms).collect();
    for (name, v) in [
        ("POST -> script started", &mut start),
        ("POST -> first line received", &mut line),
        ("line stored -> received", delivery),
    ] {
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<28} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            v[0],
            pct(v, 50.0),
            pct(v, 95.0),
            pct(v, 99.0),
            v[v.len() - 1]
        );
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn connect(args: &BenchArgs) -> anyhow::Result<Api> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = &args.token {
            headers.insert("authorization", format!("Bearer {t}").parse()?);
        }
        let client =
            reqwest::Client::builder().cookie_store(true).default_headers(headers).tcp_nodelay(true).build()?;
        let api = Api { client, base: args.url.trim_end_matches('/').to_owned() };
        if args.token.is_none() {
            let Some(pw) = &args.password else { bail!("give --token, or --username and --password") };
            api.post("/api/v1/auth/login", json!({"username": args.username, "password": pw}))
                .await
                .context("cannot log in")?;
        }
        Ok(api)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self.client.post(format!("{}{path}", self.base)).json(&body).send().await?;
        Self::json(r).await
    }

    async fn json(r: reqwest::Response) -> anyhow::Result<Value> {
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("HTTP {status}: {}", body["error"]["message"]);
        }
        Ok(body)
    }
}
