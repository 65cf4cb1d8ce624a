//! The chromedriver child of a [`Browser`](super::Browser): started on a free loopback port in a
//! process group of its own, so that dropping it kills the Chromium it launched too.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::free_port;

/// Debian's `chromium-driver`; the tests drive this one and no other, so that the driver and the
/// browser always come from the same package version.
pub(super) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's `chromium`, named explicitly: chromedriver would otherwise look for Google Chrome.
pub(super) const CHROMIUM: &str = "/usr/bin/chromium";
/// What a failing test says when either is missing.
pub(super) const INSTALL_HINT: &str =
    "run scripts/services.sh (it installs them), or as root: apt-get install chromium chromium-driver";

/// How many times `start` picks another port when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// Two cores shared with a whole test suite can make a cold start slow; a healthy one takes
/// well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running chromedriver; killed with everything it started when dropped.
pub(super) struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Set once `wait` returned: the group may be empty and its number reused, so no signal.
    reaped: bool,
}

impl Driver {
    /// Starts chromedriver, writing its output to `dir/chromedriver.log`, and waits until it
    /// answers. Panics with the installation hint when chromedriver or Chromium is missing: a
    /// browser test never skips.
    pub(super) async fn start(dir: &Path) -> Driver {
        for exe in [CHROMEDRIVER, CHROMIUM] {
            assert!(Path::new(exe).is_file(), "{exe} is not installed: {INSTALL_HINT}");
        }
        for _ in 0..PORT_ATTEMPTS {
            if let Some(driver) = Driver::try_start(dir, free_port()).await {
                return driver;
            }
        }
        panic!("chromedriver did not start on {PORT_ATTEMPTS} free ports in a row; see its output above");
    }

    /// The WebDriver URL.
    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Everything chromedriver printed so far, for failure messages.
    pub(super) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Spawns chromedriver on `port`; `None` when it exited (the port was taken meanwhile).
    async fn try_start(dir: &Path, port: u16) -> Option<Driver> {
        let log = dir.join("chromedriver.log");
        let out = File::create(&log).expect("chromedriver log file");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("chromedriver log file"))
            .stderr(out)
            // Its own group: chromedriver does not outlive a killed parent gracefully, and
            // Chromium's processes stay in the group, so one signal ends them all.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
        let mut driver = Driver { child, port, log, reaped: false };
        let deadline = Instant::now() + START_TIMEOUT;
        // Readiness comes from our own chromedriver's output first, not from the port: another
        // test's chromedriver that took the port meanwhile would answer too.
        let started = format!("started successfully on port {port}");
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                eprintln!("chromedriver exited ({status}) on port {port}:\n{}", driver.output());
                driver.reaped = true;
                return None;
            }
            if driver.output().contains(&started) && driver.answers().await {
                return Some(driver);
            }
            if Instant::now() > deadline {
                panic!("chromedriver did not answer on port {port} within {START_TIMEOUT:?}:\n{}", driver.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `GET /status` says it is ready for a new session.
    async fn answers(&self) -> bool {
        let status = async {
            let resp = reqwest::get(format!("{}status", self.url())).await.ok()?;
            resp.json::<serde_json::Value>().await.ok()
        };
        status.await.is_some_and(|s| s["value"]["ready"] == true)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGKILL to the whole group: chromedriver and every Chromium process it launched
        // (Chromium's crash handler leaves the group, but exits once the browser is gone).
        if self.reaped {
            return;
        }
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
