//! Internal gRPC calls: how a service reaches another ([`Channel`]: over the network, or directly
//! within one process), and the cluster secret they carry as a bearer token — [`ClusterAuth`]
//! adds it on the calling side, [`check`] verifies it (in constant time) on the serving side.

use tonic::body::Body;
use tonic::codegen::http;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// How a service reaches an internal gRPC service (`Tasks`, `Schedules`): another process's port
/// over the network (a tonic `Channel`), or this process's own service called directly. Callers
/// are the same generated gRPC clients either way, with the same interceptors, encodings and
/// cluster secret: only the transport differs.
pub type Channel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// Why an internal call did not reach its service (the service's own answers are `Status`es).
/// A type of its own rather than a bare boxed error: with `Box<dyn Error>` as the service's
/// error, the generated clients' futures hit a limit of the compiler's lifetime inference
/// ("implementation of `From` is not general enough") wherever they are spawned.
#[derive(Debug)]
pub struct TransportError(tower::BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A [`Channel`] over `service`: a tonic `Channel`, or a generated server (`TasksServer`) of this
/// process, which then answers without HTTP/2 framing, a pipe or a socket in between.
pub fn channel<S>(service: S) -> Channel
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
{
    BoxCloneSyncService::new(service.map_err(|e| TransportError(e.into())))
}

/// Adds `authorization: Bearer <cluster secret>` to every call.
#[derive(Clone)]
pub struct ClusterAuth {
    header: MetadataValue<tonic::metadata::Ascii>,
}

impl ClusterAuth {
    /// Fails if the secret has characters a header cannot carry.
    pub fn new(secret: &str) -> Result<ClusterAuth, String> {
        let header = format!("Bearer {secret}").parse().map_err(|_| {
            "cluster.secret has characters that cannot travel in a header; use printable ASCII".to_owned()
        })?;
        Ok(ClusterAuth { header })
    }
}

impl std::fmt::Debug for ClusterAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterAuth(********)")
    }
}

impl Interceptor for ClusterAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.header.clone());
        Ok(req)
    }
}

/// The cluster secret as the serving side keeps it: cheap to clone, and masked in `Debug`, so an
/// options struct that holds it may derive `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(std::sync::Arc<str>);

impl ClusterSecret {
    pub fn new(secret: &str) -> ClusterSecret {
        ClusterSecret(secret.into())
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(********)")
    }
}

/// `Ok` when `req` carries `secret` as its bearer token.
pub fn check<T>(req: &tonic::Request<T>, secret: &ClusterSecret) -> Result<(), tonic::Status> {
    let secret: &str = &secret.0;
    let given = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if crate::token::equal(given, secret) {
        Ok(())
    } else {
        Err(tonic::Status::unauthenticated("internal call without the cluster secret"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_passes() {
        let (secret, other) = (ClusterSecret::new("s3cret"), ClusterSecret::new("other"));
        let mut req = tonic::Request::new(());
        assert!(check(&req, &secret).is_err(), "no header");
        let mut auth = ClusterAuth::new("s3cret").unwrap();
        req = auth.call(req).unwrap();
        assert!(check(&req, &secret).is_ok());
        assert!(check(&req, &other).is_err());
        assert!(!format!("{secret:?}{auth:?}").contains("s3cret"));
    }
}
