//! TLS on the gRPC ports, with certificates made in the test: a node whose runner port and
//! internal port both use TLS runs tasks on its own runner (which dials its runner port over
//! TLS) and on a remote runner registered with `--url https://… --ca-file`; a node calls its own
//! internal port over TLS; and a runner whose URL does not match the port's TLS gets a clear
//! error, not a hang.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_testkit::TestServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::json;

use crate::remote_runners::{RunnerProcess, baton};

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "baton test CA");
        let ca_key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const CLUSTER_SECRET: &str = "a-cluster-secret-of-thirty-two-characters";

/// A server whose runner port and internal port use TLS.
async fn tls_server(certs: &Certs, local_runner: bool) -> TestServer {
    let (cert, key, ca) = (certs.path("server.pem"), certs.path("server.key"), certs.path("ca.pem"));
    let adjust = move |cfg: &mut baton_config::Config| {
        cfg.grpc.tls.cert_file = Some(cert.clone());
        cfg.grpc.tls.key_file = Some(key.clone());
        cfg.cluster.tls.cert_file = Some(cert.clone());
        cfg.cluster.tls.key_file = Some(key.clone());
        cfg.cluster.tls.ca_file = Some(ca.clone());
        cfg.cluster.secret = Some(baton_config::Secret::new(CLUSTER_SECRET));
    };
    if local_runner { TestServer::start_with(adjust).await } else { TestServer::start_with_no_runner(adjust).await }
}

fn https(srv: &TestServer) -> String {
    srv.grpc_url().replace("http://127.0.0.1", "https://localhost")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_tls_ports_runs_tasks_on_its_own_and_remote_runners() {
    let certs = Certs::new();
    let srv = tls_server(&certs, true).await;
    let c = &srv.client;
    let pid = c.project().await;
    // Submitting goes over the internal port (TLS), running over the runner port (TLS).
    let local = c.template(pid, json!({"script": "echo over tls"})).await;
    let id = c.submit(pid, local).await;
    assert_eq!(c.wait_final(pid, id, Duration::from_secs(20)).await["status"], "succeeded");
    assert_eq!(c.log_texts(pid, id).await, ["over tls"]);

    let ca = certs.path("ca.pem").display().to_string();
    let remote = RunnerProcess::start_with(c, &https(&srv), "remote-tls", "remote", &["--ca-file", &ca]).await;
    let tid = c.template(pid, json!({"script": "echo remote over tls", "labels": ["remote"]})).await;
    let id = c.submit(pid, tid).await;
    let t = c.wait_final(pid, id, Duration::from_secs(20)).await;
    assert_eq!((t["status"].as_str(), t["runner_id"].as_i64()), (Some("succeeded"), Some(remote.id)), "{t}");
}

/// Runs `baton runner register` against `url` and returns its output; it must end by itself.
fn register(url: &str, dir: &Path, more: &[&str]) -> (bool, String) {
    let started = Instant::now();
    let mut args = vec!["runner", "register", "--url", url, "--token", "brt_whatever", "--name", "x"];
    args.extend(more);
    args.push("--config");
    let out = baton(&args, &dir.join("runner.toml"));
    assert!(started.elapsed() < Duration::from_secs(30), "register hung for {:?}", started.elapsed());
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_whose_url_does_not_match_the_ports_tls_is_told_why() {
    let certs = Certs::new();
    let srv = tls_server(&certs, false).await;
    let dir = tempfile::tempdir().unwrap();

    // Plaintext to the TLS port.
    let (ok, out) = register(&srv.grpc_url(), dir.path(), &[]);
    eprintln!("plaintext to TLS: {out}");
    assert!(!ok && out.contains("use an https:// URL"), "{out}");
    // TLS without the CA that signed the certificate.
    let (ok, out) = register(&https(&srv), dir.path(), &[]);
    eprintln!("TLS without the CA: {out}");
    assert!(!ok && out.contains("--ca-file"), "{out}");
    // TLS to a plaintext port.
    let plain = TestServer::start_without_runner().await;
    let ca = certs.path("ca.pem").display().to_string();
    let url = plain.grpc_url().replace("http://", "https://");
    let (ok, out) = register(&url, dir.path(), &["--ca-file", &ca]);
    eprintln!("TLS to plaintext: {out}");
    assert!(!ok && out.contains("use an http:// URL"), "{out}");
    // With the CA, the TLS port answers (and refuses the made-up token).
    let (ok, out) = register(&https(&srv), dir.path(), &["--ca-file", &ca]);
    assert!(!ok && out.contains("registration token"), "{out}");
}

/// A self-signed certificate shared by the nodes needs no CA file: a node trusts its own
/// certificate when it calls itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_needs_no_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["baton.internal".to_owned()]).unwrap().self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let srv = TestServer::start_with(move |cfg| {
        cfg.grpc.tls.cert_file = Some(cert_path.clone());
        cfg.grpc.tls.key_file = Some(key_path.clone());
        cfg.cluster.tls.cert_file = Some(cert_path.clone());
        cfg.cluster.tls.key_file = Some(key_path.clone());
    })
    .await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo self-signed"})).await;
    let id = c.submit(pid, tid).await;
    assert_eq!(c.wait_final(pid, id, Duration::from_secs(20)).await["status"], "succeeded");
}

/// A gateway running apart calls the dispatcher's and the scheduler's internal port over TLS
/// when their URLs say `https://`, trusting `cluster.tls.ca_file`.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_apart_calls_the_internal_port_over_tls() {
    let certs = Certs::new();
    let srv = tls_server(&certs, true).await;
    let internal = srv.cluster_url().replace("http://127.0.0.1", "https://localhost");
    let data = tempfile::tempdir().unwrap();
    let mut cfg = baton_testkit::test_config(data.path(), srv.database_url());
    cfg.cluster.dispatcher_url = Some(internal.clone());
    cfg.cluster.scheduler_url = Some(internal);
    cfg.cluster.tls.ca_file = Some(certs.path("ca.pem"));
    cfg.cluster.secret = Some(baton_config::Secret::new(CLUSTER_SECRET));
    let services = baton::server::Services { gateway: true, scheduler: false, dispatcher: false };
    let gateway = baton::server::start(cfg, baton::server::StartOptions { no_runner: true, services }).await.unwrap();
    let c = baton_testkit::Client::new(&format!("http://{}", gateway.http_addr));
    c.login("admin", baton_testkit::ADMIN_PASSWORD).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo through the gateway"})).await;
    let id = c.submit(pid, tid).await;
    assert_eq!(c.wait_final(pid, id, Duration::from_secs(20)).await["status"], "succeeded");
    let schedule = json!({"template_id": tid, "cron": "0 0 * * *"});
    c.post(&format!("/api/v1/projects/{pid}/schedules"), schedule).await.expect(201);
    gateway.shutdown().await.unwrap();
}
