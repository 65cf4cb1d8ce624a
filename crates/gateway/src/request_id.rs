//! Request ids: every HTTP request carries one — the client's `X-Request-Id` when it sent a sane
//! one, else a fresh one — which is returned in the response header and in error bodies, names
//! the span that every log line of the request is written in, and travels with the gateway's
//! internal gRPC calls (`x-request-id` metadata), so one id finds a request in every node's log.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tonic::service::Interceptor;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<HeaderValue> {
    CURRENT.try_with(HeaderValue::clone).ok()
}

/// Gives the request its id and runs it in the id's span (which names the node too).
pub async fn layer(State(node_id): State<std::sync::Arc<str>>, req: Request, next: Next) -> Response {
    let id = req.headers().get(HEADER).filter(|v| acceptable(v.as_bytes())).cloned().unwrap_or_else(generate);
    let span = tracing::info_span!(
        "request",
        request_id = %String::from_utf8_lossy(id.as_bytes()),
        node_id = %node_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = CURRENT.scope(id.clone(), next.run(req).instrument(span)).await;
    resp.headers_mut().insert(HEADER, id);
    resp
}

/// A client's id is kept when it is short and plain (it ends up in logs and headers).
fn acceptable(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

fn generate() -> HeaderValue {
    let id = hex::encode(rand::random::<[u8; 12]>());
    // Hex digits are always a valid header value.
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Adds the current request's id to an outgoing internal call.
#[derive(Clone)]
pub struct Outgoing(pub baton_core::internal::ClusterAuth);

impl Interceptor for Outgoing {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut req = self.0.call(req)?;
        if let Some(id) = current().and_then(|v| v.to_str().ok().and_then(|s| s.parse().ok())) {
            req.metadata_mut().insert(HEADER, id);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable(b"4f1c-req_1.a:b"));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"has space"));
        assert!(!acceptable(b"line\nbreak"));
        assert!(!acceptable(&[b'a'; 129]));
        assert!(acceptable(generate().as_bytes()));
    }

    #[tokio::test]
    async fn internal_calls_carry_the_requests_id() {
        let mut out = Outgoing(baton_core::internal::ClusterAuth::new(&"s".repeat(32)).unwrap());
        let id = HeaderValue::from_static("req-42");
        let req = CURRENT.scope(id, async { out.call(tonic::Request::new(())) }).await.unwrap();
        assert_eq!(req.metadata().get(HEADER).unwrap(), "req-42");
        assert!(req.metadata().get("authorization").is_some(), "and the cluster's credentials");
        let mut out2 = out.clone();
        let bare = out2.call(tonic::Request::new(())).unwrap();
        assert!(bare.metadata().get(HEADER).is_none(), "no request, no id");
    }
}
