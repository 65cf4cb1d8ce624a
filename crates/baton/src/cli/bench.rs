//! `baton bench`: submits tasks to a running Baton through its HTTP API and reports how long
//! each took from the POST to the script's start (as the runner recorded it) and to the script's
//! first log line, and the throughput until all finished.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
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
}

struct Sample {
    to_start_ms: f64,
    to_first_line_ms: Option<f64>,
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

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..args.tasks {
        let permit = gate.clone().acquire_owned().await?;
        let api = api.clone();
        runs.spawn(async move {
            let r = one(&api, pid, tid).await;
            drop(permit);
            r
        });
    }
    let mut samples = Vec::with_capacity(args.tasks);
    let mut failed = 0;
    while let Some(r) = runs.join_next().await {
        match r? {
            Ok(Some(s)) => samples.push(s),
            Ok(None) => failed += 1,
            Err(e) => return Err(e),
        }
        eprint!("\r{}/{} tasks finished", samples.len() + failed, args.tasks);
        let _ = std::io::stderr().flush();
    }
    let elapsed = started.elapsed();
    eprintln!();
    let _ = api.client.delete(format!("{}/api/v1/projects/{pid}", api.base)).send().await;

    let mut start: Vec<f64> = samples.iter().map(|s| s.to_start_ms).collect();
    let mut line: Vec<f64> = samples.iter().filter_map(|s| s.to_first_line_ms).collect();
    println!(
        "tasks {}  concurrency {}  failed {failed}  wall {:.2}s  throughput {:.1} tasks/s",
        args.tasks,
        args.concurrency,
        elapsed.as_secs_f64(),
        args.tasks as f64 / elapsed.as_secs_f64()
    );
    println!("{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}", "latency (ms)", "min", "p50", "p95", "p99", "max");
    for (name, v) in [("POST -> script started", &mut start), ("POST -> first log line", &mut line)] {
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
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Submits one task, waits for its end and reads its timings. `None` if it did not succeed.
async fn one(api: &Api, pid: i64, tid: i64) -> anyhow::Result<Option<Sample>> {
    let t0 = SystemTime::now();
    let task = api.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid})).await?;
    let id = task["id"].as_i64().context("task id")?;
    let task = loop {
        let t = api.get(&format!("/api/v1/projects/{pid}/tasks/{id}")).await?;
        match t["status"].as_str() {
            Some("queued" | "assigned" | "running") => tokio::time::sleep(Duration::from_millis(2)).await,
            _ => break t,
        }
    };
    if task["status"] != "succeeded" {
        eprintln!("\ntask {id} ended {}: {}", task["status"], task["error"]);
        return Ok(None);
    }
    let log = api.get(&format!("/api/v1/projects/{pid}/tasks/{id}/log?limit=1")).await?;
    let since = |v: &Value| -> Option<f64> {
        let t: DateTime<Utc> = v.as_str()?.parse().ok()?;
        let t: SystemTime = t.into();
        Some(t.duration_since(t0).map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64()) * 1000.0)
    };
    Ok(Some(Sample {
        to_start_ms: since(&task["started_at"]).unwrap_or(f64::NAN),
        to_first_line_ms: since(&log["items"][0]["time"]),
    }))
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

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Self::json(self.client.get(format!("{}{path}", self.base)).send().await?).await
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
