//! A private Redis server a test may stop and start again, for coordination tests and outages.
//! It runs `redis-server` (installed by `scripts/services.sh`) on a free loopback port in a fresh
//! directory, without persistence, and dies with this value. Optionally it speaks TLS only, with
//! a self-signed certificate made by `openssl`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::free_port;

pub struct PrivateRedis {
    dir: TempDir,
    exe: PathBuf,
    port: u16,
    tls: bool,
    child: Mutex<Option<Child>>,
}

/// How many times `start` picks another port when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

impl PrivateRedis {
    /// Starts a new server on a free port.
    pub fn start() -> PrivateRedis {
        PrivateRedis::start_with(false)
    }

    /// Starts a new server that accepts only TLS, with a self-signed certificate for `localhost`
    /// (so clients must skip verification: `url()` ends with `#insecure`).
    pub fn start_tls() -> PrivateRedis {
        PrivateRedis::start_with(true)
    }

    fn start_with(tls: bool) -> PrivateRedis {
        let exe = find_on_path("redis-server").unwrap_or_else(|| {
            panic!(
                "redis-server is not installed: run scripts/services.sh (it installs the Debian package redis-server)"
            )
        });
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temp dir");
            if tls {
                make_certificate(dir.path());
            }
            let redis = PrivateRedis { dir, exe: exe.clone(), port: free_port(), tls, child: Mutex::new(None) };
            if redis.try_start() {
                return redis;
            }
        }
        panic!("redis-server did not start on {PORT_ATTEMPTS} free ports in a row; see its log above");
    }

    /// `redis://127.0.0.1:PORT/`, or `rediss://127.0.0.1:PORT/#insecure` for a TLS server.
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, as in a crash) and waits until it is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the (stopped) server again on the same port, empty.
    pub fn start_again(&self) {
        assert!(self.try_start(), "redis-server did not start again on port {}", self.port);
    }

    /// Deletes every key.
    pub fn flushall(&self) {
        assert!(!self.tls, "flushall speaks plain RESP; use a client with TLS for a TLS server");
        let reply = self.command("FLUSHALL").expect("FLUSHALL");
        assert_eq!(reply, "+OK", "FLUSHALL answered {reply}");
    }

    /// Spawns the server and waits until it answers; `false` when it exited (its port was taken).
    fn try_start(&self) -> bool {
        self.stop();
        let dir = self.dir.path();
        let log = dir.join("server.log");
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(dir.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("key.pem"));
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        // Readiness comes from our own log, not from the port: a server of another test that
        // took the port meanwhile would answer too.
        let _ = std::fs::remove_file(&log);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("redis-server exited ({status}):\n{text}");
                return false;
            }
            if text.contains("Ready to accept connections") {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not get ready on port {} within 10 s:\n{text}", self.port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        true
    }

    /// Sends one inline command and returns the first line of the reply.
    fn command(&self, command: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{command}\r\n").as_bytes())?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }
}

/// A self-signed certificate and key for `localhost` in `dir`.
fn make_certificate(dir: &Path) {
    let openssl = find_on_path("openssl")
        .unwrap_or_else(|| panic!("openssl is not installed; the TLS tests need it (apt-get install openssl)"));
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
