//! A remote runner as a real process: registered with a token minted through the API, then
//! `baton runner run`, both dialling the cluster through HAProxy's gRPC port, so whichever node
//! HAProxy picks holds its stream.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::api::Api;
use crate::haproxy::Haproxy;

/// Which runner to start: its name, the runner port it dials and its labels.
pub struct Spec<'a> {
    pub name: &'a str,
    pub grpc_url: &'a str,
    pub labels: &'a [&'a str],
}

pub struct Runner {
    pub id: i64,
    pub name: String,
    child: Child,
    dir: PathBuf,
}

impl Runner {
    /// Registers runner `name` (capacity 8) and starts it, both through `haproxy`.
    pub async fn start(api: &Api, haproxy: &Haproxy, dir: &Path, name: &str) -> Runner {
        Runner::start_at(api, haproxy, &haproxy.grpc_url(), dir, name).await
    }

    /// Like [`Runner::start`], dialling `grpc_url` (one node's runner port, say) instead.
    pub async fn start_at(api: &Api, haproxy: &Haproxy, grpc_url: &str, dir: &Path, name: &str) -> Runner {
        Runner::start_with(api, haproxy, dir, Spec { name, grpc_url, labels: &[] }).await
    }

    /// Like [`Runner::start_at`], with the labels of `spec` (granted by its registration token).
    pub async fn start_with(api: &Api, haproxy: &Haproxy, dir: &Path, spec: Spec<'_>) -> Runner {
        let Spec { name, grpc_url, labels } = spec;
        let http = haproxy.http_url();
        let body = json!({"labels": labels});
        let token = api.post_idempotent(&http, "/api/v1/runner-registration-tokens", &body, 201).await.body["token"]
            .as_str()
            .expect("a registration token")
            .to_owned();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runner.toml");
        let out = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["runner", "register", "--url", grpc_url, "--token", &token, "--name", name])
            .args(["--capacity", "8", "--config"])
            .arg(&file)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "registering runner {name} at {grpc_url} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let id = text.lines().find_map(|l| l.strip_prefix("runner_id = ")).expect("runner_id in the config").parse();
        let log = std::fs::File::create(dir.join("runner.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["runner", "run", "--config"])
            .arg(&file)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Runner { id: id.expect("a numeric runner id"), name: name.to_owned(), child, dir }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("runner.log")).unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
