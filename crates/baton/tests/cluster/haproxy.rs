//! HAProxy in front of the nodes, as a production cluster has it: one HTTP frontend and one gRPC
//! (cleartext HTTP/2) frontend, both balancing over the nodes that answer `/api/ready` with 200.
//! It runs in the foreground as a child process with a configuration written per test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_testkit::free_port;

/// The ports of one node, as HAProxy needs them.
pub struct Backend {
    pub name: String,
    pub http_port: u16,
    pub grpc_port: u16,
}

pub struct Haproxy {
    pub http_port: u16,
    pub grpc_port: u16,
    child: Child,
    log: PathBuf,
}

/// The configuration. Health checks go to each node's HTTP port for both backends, so a node
/// that is not ready (down, draining) gets neither API calls nor new runner streams. Timeouts are
/// long, as for production's long-lived connections: runner streams, WebSockets (a tunnel once
/// upgraded) and SSE log streams, which HAProxy passes on unbuffered as they come (the event
/// tests check that lines through it arrive while the task prints).
fn config(http_port: u16, grpc_port: u16, backends: &[Backend]) -> String {
    // `noreuseport`: by default HAProxy binds with SO_REUSEPORT, so when `free_port` gave one port
    // twice both frontends would listen on it and share its connections (runners then reach the
    // HTTP API half the time). With it such a start fails to bind, and `start` tries new ports.
    let mut cfg = String::from(
        "global\n    maxconn 4096\n    noreuseport\n\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 1h\n    timeout server 1h\n\
         \x20   timeout tunnel 1h\n    retries 3\n    option redispatch\n\
         \x20   # IP literals need no resolving; `none` keeps HAProxy starting whatever the nodes do.\n\
         \x20   default-server init-addr libc,none check inter 500ms fall 2 rise 2\n\n",
    );
    writeln!(cfg, "frontend api\n    bind 127.0.0.1:{http_port}\n    default_backend nodes_http\n").unwrap();
    // A request that failed on a dying node is retried elsewhere, except a POST: it may have been
    // applied before the node died, and repeating it could create a task twice. A POST is still
    // retried when the connection itself failed, since then nothing was sent.
    cfg.push_str(
        "backend nodes_http\n    balance roundrobin\n    option httpchk GET /api/ready\n\
         \x20   http-check expect status 200\n    retry-on all-retryable-errors\n\
         \x20   http-request disable-l7-retry if METH_POST\n",
    );
    for b in backends {
        writeln!(cfg, "    server {} 127.0.0.1:{}", b.name, b.http_port).unwrap();
    }
    writeln!(cfg, "\nfrontend grpc\n    bind 127.0.0.1:{grpc_port} proto h2\n    default_backend nodes_grpc\n")
        .unwrap();
    // Runner streams are long-lived: no L7 retries (a stream cannot be replayed), and the checks
    // speak HTTP/1 to the HTTP port while the traffic speaks h2 to the gRPC port.
    cfg.push_str(
        "backend nodes_grpc\n    balance roundrobin\n    option httpchk GET /api/ready\n\
         \x20   http-check expect status 200\n",
    );
    for b in backends {
        writeln!(
            cfg,
            "    server {} 127.0.0.1:{} proto h2 check-proto h1 check port {}",
            b.name, b.grpc_port, b.http_port
        )
        .unwrap();
    }
    cfg
}

/// The haproxy binary: on PATH, or where Debian puts it (`/usr/sbin`, off PATH for non-root).
fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file());
    let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"));
    assert!(bin.is_file(), "haproxy is not installed: run scripts/services.sh (it installs the Debian package)");
    bin
}

impl Haproxy {
    /// Starts HAProxy for `backends` with its config and log in `dir`.
    pub async fn start(dir: &Path, backends: &[Backend]) -> Haproxy {
        for _ in 0..5 {
            let (http_port, grpc_port) = (free_port(), free_port());
            let cfg_path = dir.join("haproxy.cfg");
            std::fs::write(&cfg_path, config(http_port, grpc_port, backends)).unwrap();
            let log = dir.join("haproxy.log");
            let out = std::fs::File::create(&log).unwrap();
            let check = Command::new(binary()).args(["-c", "-q", "-f"]).arg(&cfg_path).output().unwrap();
            assert!(check.status.success(), "haproxy rejects its config: {}", String::from_utf8_lossy(&check.stderr));
            let child = Command::new(binary())
                .args(["-db", "-f"])
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("haproxy starts");
            let mut h = Haproxy { http_port, grpc_port, child, log };
            match h.wait_listening().await {
                Ok(()) => return h,
                Err(text) if text.contains("cannot bind") || text.contains("Address already in use") => continue,
                Err(text) => panic!("haproxy did not start:\n{text}"),
            }
        }
        panic!("haproxy found no free ports in five tries");
    }

    async fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let both = [self.http_port, self.grpc_port]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if both {
                return Ok(());
            }
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.log_text());
            }
            if Instant::now() > deadline {
                return Err(format!("not listening within 10 s\n{}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The URL runners dial.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_config_is_valid_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let backends: Vec<Backend> =
        (1..=3).map(|n| Backend { name: format!("node-{n}"), http_port: 20000 + n, grpc_port: 21000 + n }).collect();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config(1, 2, &backends)).unwrap();
    let out = Command::new(binary()).args(["-c", "-f"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
