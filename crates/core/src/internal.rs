//! Internal gRPC calls carry the cluster secret as a bearer token; this interceptor adds it.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;

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
