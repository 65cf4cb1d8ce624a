//! `baton migrate`: several started at once on a new database (as every pod of a deployment
//! may run it) all succeed, together apply each migration once, and `status` lists what is
//! applied without creating anything.

use std::process::{Command, Output};

use baton_testkit::TestDatabase;

/// `baton` on the database at `url`, without the test harness's own variables (the server
/// refuses unknown keys).
fn baton(url: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_TEST_")) {
        cmd.env_remove(k);
    }
    cmd.env("BATON_DATABASE_URL", url).env("BATON_DATA_DIR", dir);
    cmd
}

fn migrate(url: &str, dir: &std::path::Path, action: &str) -> std::process::Child {
    baton(url, dir)
        .args(["migrate", action])
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

/// `baton admin create-registration-token --token-file F` makes the token in F valid (a token an
/// operator keeps in a secret store, applied at every deployment): applied twice it stays one
/// token, and with `--max-uses 0` any number of runners register with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_registration_token_is_applied_idempotently() {
    use baton_proto::v1::RegisterRequest;
    use baton_proto::v1::runner_client::RunnerClient;

    let srv = baton_testkit::TestServer::start_without_runner().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let token = "brt_kept-in-a-secret-store-0123456789abcdef";
    std::fs::write(&file, format!("{token}\n")).unwrap();
    for _ in 0..2 {
        let out = baton(srv.database_url(), dir.path())
            .args(["admin", "create-registration-token", "--max-uses", "0", "--labels", "k8s", "--token-file"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut grpc = RunnerClient::connect(srv.grpc_url()).await.unwrap();
    for n in 0..3 {
        let req = RegisterRequest { token: token.into(), name: format!("pod-{n}"), capacity: 1, ..Default::default() };
        assert_eq!(grpc.register(req).await.unwrap().into_inner().labels, ["k8s"]);
    }
    std::fs::write(&file, "short").unwrap();
    let out = baton(srv.database_url(), dir.path())
        .args(["admin", "create-registration-token", "--token-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).contains("at least 32"), "{}", text(&out));
}
