//! The standard gRPC services every node serves beside its own: `grpc.health.v1` and server
//! reflection, so ordinary gRPC tools can check and inspect it; and the split of the ports: the
//! runner port serves runners only, the internal port the services' own calls only.

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
