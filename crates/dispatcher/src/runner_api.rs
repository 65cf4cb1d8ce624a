//! The `Runner` gRPC service: registration, and the opening of a runner's stream. Runners are
//! outside the trust boundary, so everything a runner says about itself is checked here against
//! what it was granted: its identity against the stored digest of its secret, its labels against
//! those its registration token granted (a hello may only narrow them), its project from the
//! token alone, and every field's size. The stream itself is `session.rs`.

use baton_core::{Coded, token};
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::{self as pb, RunnerMessage};
use baton_store::dispatcher::runners::Registration;
use baton_store::entity::runner;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::outbox::{OutStream, Outbox};
use crate::session::{Opening, Session};
use crate::{Service, session};

/// The most labels a runner may have.
const MAX_LABELS: usize = 64;
/// The longest version string a runner may report.
const MAX_VERSION: usize = 64;
/// The most tasks a hello may list: a runner holds at most its capacity (1024) in running tasks,
/// plus finished ones whose end is not acknowledged yet.
pub const MAX_HELLO_TASKS: usize = 4096;
/// The range a runner's capacity is clamped into.
const CAPACITY: std::ops::RangeInclusive<u32> = 1..=1024;

pub struct RunnerApi {
    svc: Service,
}

impl RunnerApi {
    pub fn new(svc: Service) -> RunnerApi {
        RunnerApi { svc }
    }
}

#[tonic::async_trait]
impl pb::runner_server::Runner for RunnerApi {
    type AttachStream = OutStream;

    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() || r.name.len() > 100 {
            return Err(Status::invalid_argument("name: give the runner a name of 1 to 100 characters"));
        }
        check_labels("labels", &r.labels)?;
        check_version(&r.version)?;
        let secret = token::generate("brs_");
        let digest = token::digest(&secret);
        let spec = baton_store::dispatcher::runners::RunnerSpec {
            name: &r.name,
            labels: &r.labels,
            capacity: r.capacity.clamp(*CAPACITY.start(), *CAPACITY.end()) as i32,
            secret_hash: &digest,
        };
        let tables = &self.svc.inner.tables;
        match tables.register_runner(&token::digest(&r.token), spec).await.map_err(|e| e.to_status())? {
            Registration::Registered { runner, labels } => {
                tracing::info!(runner_id = runner.id, name = %r.name, ?labels, project_id = ?runner.project_id, "runner registered");
                Ok(Response::new(pb::RegisterResponse { runner_id: runner.id, secret, labels }))
            }
            Registration::UnknownToken => Err(Status::unauthenticated(
                "unknown, expired or used-up registration token; ask an admin for a new one",
            )),
            Registration::LabelNotGranted { label, granted } => Err(Status::permission_denied(format!(
                "labels: the registration token does not grant {label:?} (it grants {}); leave it out, or ask an \
                 admin for a token that grants it",
                granted.join(", ")
            ))),
        }
    }

    async fn attach(&self, req: Request<Streaming<RunnerMessage>>) -> Result<Response<OutStream>, Status> {
        if self.svc.is_draining() {
            return Err(Status::unavailable("this node is draining; connect to another one"));
        }
        let row = authenticate(&self.svc, &req).await?;
        let mut inbound = req.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(RunnerMessage { msg: Some(Msg::Hello(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("the first message on a runner stream must be hello")),
        };
        let opening = check_hello(hello, &row)?;
        let (outbox, stream) = Outbox::new(opening.capacity);
        let session = Session::new(self.svc.clone(), row.id, outbox);
        // The stream goes back to the runner before the hello is reconciled, so the answers to a
        // long hello (one `Stop` per task it may no longer run) flow as they are made instead of
        // filling a queue nobody drains yet.
        tokio::spawn(session::run(session, opening, row, inbound));
        Ok(Response::new(stream))
    }
}

/// Checks `x-baton-runner-id` and the bearer secret against the stored digest; returns the
/// runner's row.
async fn authenticate<T>(svc: &Service, req: &Request<T>) -> Result<runner::Model, Status> {
    let md = req.metadata();
    let id = md
        .get("x-baton-runner-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| Status::unauthenticated("missing x-baton-runner-id"))?;
    let secret = md
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("missing runner secret"))?;
    let runner = match svc.inner.tables.runner(id).await {
        Ok(r) => r,
        Err(e) if e.code() == baton_core::ErrorCode::NotFound => {
            return Err(Status::unauthenticated("unknown runner or wrong secret"));
        }
        Err(e) => return Err(e.to_status()),
    };
    if runner.revoked || !token::verify(secret, &runner.secret_hash) {
        return Err(Status::unauthenticated("unknown runner or wrong secret"));
    }
    Ok(runner)
}

/// What a hello may say, checked against the runner's registration.
fn check_hello(hello: pb::Hello, row: &runner::Model) -> Result<Opening, Status> {
    if hello.protocol_version == 0 {
        return Err(Status::invalid_argument("hello.protocol_version is 0; upgrade the runner"));
    }
    check_version(&hello.version)?;
    check_labels("hello.labels", &hello.labels)?;
    if hello.running.len() > MAX_HELLO_TASKS {
        return Err(Status::invalid_argument(format!(
            "hello.running lists {} tasks; a runner holds at most {MAX_HELLO_TASKS}",
            hello.running.len()
        )));
    }
    let granted: Vec<String> = serde_json::from_str(&row.labels).unwrap_or_default();
    if let Some(bad) = hello.labels.iter().find(|l| !granted.contains(l)) {
        return Err(Status::permission_denied(format!(
            "hello.labels: {bad:?} was not granted to this runner at registration (granted: {}); remove it \
             from the runner's config, or register the runner again with a token that grants it",
            granted.join(", ")
        )));
    }
    Ok(Opening {
        protocol_version: hello.protocol_version,
        version: hello.version,
        labels: hello.labels,
        capacity: hello.capacity.clamp(*CAPACITY.start(), *CAPACITY.end()) as usize,
        running: hello.running,
        resumed: hello.resumed,
    })
}

fn check_labels(field: &str, labels: &[String]) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(Status::invalid_argument(format!("{field}: {} labels; at most {MAX_LABELS}", labels.len())));
    }
    if let Some(bad) = labels.iter().find(|l| !baton_core::names::valid_label(l)) {
        return Err(Status::invalid_argument(format!(
            "{field}: {:?} is not a valid label (up to 64 letters, digits and - _ . : =)",
            truncate(bad, 80)
        )));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), Status> {
    if version.len() > MAX_VERSION {
        return Err(Status::invalid_argument(format!("version: longer than {MAX_VERSION} bytes")));
    }
    Ok(())
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The ensured runner of `baton server` gets its capacity clamped like any other.
pub fn clamp_capacity(capacity: u32) -> i32 {
    capacity.clamp(*CAPACITY.start(), *CAPACITY.end()) as i32
}

/// A runner spec, for tests of the checks.
#[cfg(test)]
fn row(labels: &[&str]) -> runner::Model {
    runner::Model {
        id: 1,
        name: "r".into(),
        labels: serde_json::to_string(labels).unwrap(),
        capacity: 1,
        secret_hash: String::new(),
        paused: false,
        revoked: false,
        version: String::new(),
        node_id: None,
        last_seen: None,
        created_at: 0,
        project_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(labels: &[&str], capacity: u32) -> pb::Hello {
        pb::Hello {
            protocol_version: 1,
            version: "1".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            capacity,
            running: Vec::new(),
            resumed: false,
        }
    }

    #[test]
    fn a_hello_may_narrow_the_granted_labels_but_not_widen_them() {
        let granted = row(&["linux", "docker"]);
        assert_eq!(check_hello(hello(&["docker"], 2), &granted).unwrap().labels, ["docker"]);
        assert!(check_hello(hello(&[], 2), &granted).unwrap().labels.is_empty());
        let err = check_hello(hello(&["docker", "prod"], 2), &granted).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("\"prod\""), "{}", err.message());
    }

    #[test]
    fn capacity_is_clamped_and_oversized_fields_are_refused() {
        let r = row(&[]);
        assert_eq!(check_hello(hello(&[], 0), &r).unwrap().capacity, 1);
        assert_eq!(check_hello(hello(&[], 1_000_000), &r).unwrap().capacity, 1024);
        let mut long = hello(&[], 1);
        long.version = "v".repeat(65);
        assert_eq!(check_hello(long, &r).unwrap_err().code(), tonic::Code::InvalidArgument);
        let mut many = hello(&[], 1);
        many.running = vec![pb::TaskRef { task_id: 1, epoch: 1 }; MAX_HELLO_TASKS + 1];
        assert!(check_hello(many, &r).unwrap_err().message().contains("hello.running"));
        let labels: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}")).collect();
        assert!(check_labels("labels", &labels).is_err());
        assert!(check_labels("labels", &["a b".to_owned()]).is_err());
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
