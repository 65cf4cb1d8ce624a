//! The standard gRPC services every node serves beside its own: `grpc.health.v1` and server
//! reflection (v1, and v1alpha for clients such as Python's official one), so ordinary gRPC
//! tools can check and inspect it; and the split of the ports: the runner port serves runners
//! only, the internal port the services' own calls only.

use baton_testkit::TestServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_and_reflection_answer() {
    let srv = TestServer::start().await;
    let channel = tonic::transport::Endpoint::from_shared(srv.grpc_url()).unwrap().connect().await.unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "baton.v1.Runner"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.Service".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([req])).await.unwrap().into_inner();
    let first = answers.message().await.unwrap().expect("an answer");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else { panic!("{first:?}") };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["baton.v1.Runner", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n == "baton.v1.Tasks"), "the runner port lists internal services: {names:?}");

    let internal = tonic::transport::Endpoint::from_shared(srv.cluster_url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(internal);
    for service in ["", "baton.v1.Tasks", "baton.v1.Schedules"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
}

/// Runners (outside the trust boundary) reach only the `Runner` service: the internal services
/// are not served on their port at all, even to a caller holding the cluster secret; and the
/// internal port serves no runner.
#[tokio::test]
async fn the_runner_port_serves_no_internal_service() {
    use baton_proto::v1::runner_client::RunnerClient;
    use baton_proto::v1::tasks_client::TasksClient;
    use baton_proto::v1::{RegisterRequest, SweepRequest};

    let srv = TestServer::start_without_runner().await;
    let runner_port = tonic::transport::Endpoint::from_shared(srv.grpc_url()).unwrap().connect().await.unwrap();
    let err = TasksClient::new(runner_port).sweep(SweepRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");

    let internal = tonic::transport::Endpoint::from_shared(srv.cluster_url()).unwrap().connect().await.unwrap();
    let err = TasksClient::new(internal.clone()).sweep(SweepRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "the internal port wants the cluster secret: {err:?}");
    let req = RegisterRequest { token: "brt_x".into(), name: "x".into(), ..Default::default() };
    let err = RunnerClient::new(internal).register(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
}

/// Lists the runner port's services with Python's official reflection client and resolves the
/// `Runner` service's methods through it, as tools built on it do. That client speaks only
/// v1alpha; the test above covers v1.
const PYTHON_REFLECTION_CLIENT: &str = r#"
import sys
import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

with grpc.insecure_channel(sys.argv[1]) as channel:
    db = ProtoReflectionDescriptorDatabase(channel)
    for name in db.get_services():
        print("service", name)
    for method in DescriptorPool(db).FindServiceByName("baton.v1.Runner").methods:
        print("method", method.name)
"#;

/// The Python that has grpcio and grpcio-reflection: `BATON_TEST_PYTHON` (set by
/// `scripts/services.sh`, which installs them into a virtualenv of its own), else `python3`.
fn python_with_grpc() -> String {
    let python = std::env::var("BATON_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let how = "run `eval \"$(scripts/services.sh)\"` (it installs grpcio and grpcio-reflection into a \
               virtualenv and sets BATON_TEST_PYTHON), or `pip install grpcio grpcio-reflection` for python3";
    let check = std::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python:?} ({e}); {how}"));
    assert!(
        check.status.success(),
        "{python:?} lacks the gRPC modules: {}; {how}",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    python
}

#[tokio::test]
async fn reflection_v1alpha_answers_the_python_client() {
    let python = python_with_grpc();
    let srv = TestServer::start().await;
    let target = srv.grpc_url().trim_start_matches("http://").to_owned();
    let out =
        tokio::process::Command::new(&python).args(["-c", PYTHON_REFLECTION_CLIENT, &target]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python reflection client failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for want in ["service baton.v1.Runner", "service grpc.health.v1.Health", "method Register"] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("baton.v1.Tasks"), "the runner port lists internal services:\n{stdout}");
}
