//! A private PostgreSQL server a test may stop and start, for database-outage tests. It needs the
//! PostgreSQL binaries (`BATON_TEST_PG_BIN`, set by `scripts/services.sh`); as root it runs the
//! server as the `postgres` user, which PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::free_port;

pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

fn is_root() -> bool {
    nix_free_uid() == 0
}

/// The effective user id, read from `/proc` to avoid another dependency.
fn nix_free_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)?.parse().ok()))
        .unwrap_or(u32::MAX)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn run(bin: &Path, tool: &str, args: &[&str]) {
    let exe = bin.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    /// Creates and starts a new server on a free port.
    pub fn start() -> PrivatePostgres {
        let bin = PathBuf::from(std::env::var("BATON_TEST_PG_BIN").unwrap_or_else(|_| {
            panic!("BATON_TEST_PG_BIN is not set: run the tests through ./scripts/test.sh, which installs PostgreSQL")
        }));
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "cannot give the data directory to the postgres user");
        }
        let data = dir.path().join("data");
        run(&bin, "initdb", &["-D", data.to_str().unwrap_or_default(), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        let pg = PrivatePostgres { dir, bin, port: free_port() };
        pg.start_again();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut, as in an outage).
    pub fn stop(&self) {
        run(&self.bin, "pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data());
        let log = format!("{}/server.log", self.data());
        run(&self.bin, "pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "-t", "60", "start"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new(if is_root() { "runuser" } else { "true" })
            .args(if is_root() { vec!["-u", "postgres", "--"] } else { vec![] })
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}
