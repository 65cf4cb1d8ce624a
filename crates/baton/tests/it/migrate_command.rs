//! `baton migrate`: several started at once on a new database (as every pod of a deployment
//! may run it) all succeed, together apply each migration once, and `status` lists what is
//! applied without creating anything.

use std::process::{Command, Output};

use baton_testkit::TestDatabase;

fn migrate(url: &str, dir: &std::path::Path, action: &str) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    // The test's own settings are not the server's: the server refuses unknown keys.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_TEST_")) {
        cmd.env_remove(k);
    }
    cmd.args(["migrate", action])
        .env("BATON_DATABASE_URL", url)
        .env("BATON_DATA_DIR", dir)
        .env("BATON_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("baton migrate starts")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_started_together_all_succeed() {
    for _ in 0..3 {
        let db = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let status = migrate(&db.url, dir.path(), "status").wait_with_output().unwrap();
        assert!(status.status.success(), "{}", text(&status));
        assert!(text(&status).contains("pending  m0001"), "{}", text(&status));
        let runs: Vec<_> = (0..3).map(|_| migrate(&db.url, dir.path(), "up")).collect();
        let mut applied = 0;
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(out.status.success(), "a concurrent `baton migrate` failed:\n{}", text(&out));
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            applied += line
                .trim()
                .strip_prefix("applied ")
                .and_then(|r| r.split(' ').next())
                .unwrap()
                .parse::<usize>()
                .unwrap();
        }
        let status = migrate(&db.url, dir.path(), "status").wait_with_output().unwrap();
        assert!(!text(&status).contains("pending"), "{}", text(&status));
        assert_eq!(applied, text(&status).lines().filter(|l| l.starts_with("applied")).count(), "each applied once");
    }
}
