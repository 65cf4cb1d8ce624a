//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! The operations come from the handlers' `#[utoipa::path]` annotations, which the route table
//! (`routes!` in `routes/mod.rs`) collects, so a route cannot be added without describing it.
//! `common.rs` then adds what every operation shares (the error answers, `X-Baton-Node`,
//! `X-Request-Id`, the security schemes), `params.rs` names the path parameters and `schemas/` the
//! shapes of the answers; `console.rs` adds the web console's page and files, which the router
//! serves beside the API. The tests below keep the document's routes and the router's the same.

mod common;
mod console;
mod links;
// Both describe JSON and paths that handlers read and write by other means: their types are
// never constructed, nor their fields read.
#[allow(dead_code)]
pub mod params;
#[allow(dead_code)]
pub mod schemas;

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::error::ErrorBody;

/// The parts of the document that belong to no operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Baton HTTP API",
        description = "Run scripts as tasks on runners, with their logs, schedules, projects and \
                       roles. Every answer carries `X-Baton-Node` and `X-Request-Id`; every error \
                       is `{\"error\": {\"code\", \"message\", \"request_id\"}}` with the status that says what kind it is. \
                       Lists are `{\"items\": [...], \"next\": <cursor or null>}`: pass `next` as \
                       `before` for the following page."
    ),
    security(("bearer" = []), ("session" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "probes", description = "Health, readiness and metrics, for load balancers, orchestrators and Prometheus"),
        (name = "identity", description = "Logins, users and API tokens"),
        (name = "projects", description = "Projects and their members and secrets"),
        (name = "templates", description = "Scripts and how to run them"),
        (name = "tasks", description = "Runs of templates, their attempts and logs"),
        (name = "schedules", description = "Templates run on a cron expression or once"),
        (name = "runners", description = "Runners and their registration tokens"),
        (name = "admin", description = "The cluster and the audit log"),
        (name = "events", description = "Live events over a WebSocket"),
        (name = "console", description = "The web console: its page and files, for browsers"),
    )
)]
struct Base;

/// The whole document, as built from the code.
fn build() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(crate::routes::Annotated::openapi());
    common::apply(&mut doc);
    console::apply(&mut doc);
    links::apply(&mut doc);
    doc
}

/// The whole document, as served: what utoipa's types cannot say is added to its JSON.
pub fn document() -> serde_json::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(build())?;
    common::require_answer_headers(&mut doc);
    Ok(doc)
}

/// Every operation of the document.
fn operations(doc: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
    })
}

/// The document as served, serialized once.
pub fn json() -> Result<&'static [u8], &'static serde_json::Error> {
    static JSON: OnceLock<Result<Vec<u8>, serde_json::Error>> = OnceLock::new();
    JSON.get_or_init(|| document().and_then(|doc| serde_json::to_vec(&doc))).as_ref().map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every (method, path) of the document.
    fn documented() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in build().paths.paths {
            let ops = [("GET", item.get), ("PUT", item.put), ("POST", item.post), ("DELETE", item.delete)];
            let more = [("PATCH", item.patch), ("HEAD", item.head), ("OPTIONS", item.options), ("TRACE", item.trace)];
            for (method, op) in ops.into_iter().chain(more) {
                if op.is_some() {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    fn document_links(doc: &utoipa::openapi::OpenApi) -> usize {
        let mut doc = doc.clone();
        operations(&mut doc)
            .flat_map(|op| op.responses.responses.values())
            .map(|r| match r {
                utoipa::openapi::RefOr::T(r) => r.links.len(),
                utoipa::openapi::RefOr::Ref(_) => 0,
            })
            .sum()
    }

    /// Architecture invariant: the document describes exactly the routes of the router.
    #[test]
    fn the_document_has_exactly_the_routes_of_the_router() {
        let routes: BTreeSet<(String, String)> =
            crate::routes::served().map(|(m, p)| (m.to_owned(), console::openapi_path(p))).collect();
        let documented = documented();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes the document lacks: {undocumented:?}; documented routes the router lacks: {unrouted:?} \
             (a handler's #[utoipa::path] must name its route's method and path exactly)"
        );
    }

    #[test]
    fn every_operation_has_a_unique_id_and_documents_its_errors() {
        let doc = build();
        let mut ids = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(!id.is_empty() && ids.insert(id.clone()), "{path}: operation id {id:?} missing or repeated");
                if op.security.is_none() {
                    assert!(op.responses.responses.contains_key("401"), "{path} {id}: secured without a 401");
                }
            }
        }
        for name in links::named() {
            assert!(ids.contains(name), "a link names the operation {name:?}, which the document lacks");
        }
        let links: usize = document_links(&doc);
        assert!(links >= 30, "only {links} links: one starts from an answer the document lacks");
        let json = document().unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        let session = (schemes["session"]["in"].as_str(), schemes["session"]["name"].as_str());
        assert_eq!(session, (Some("cookie"), Some("baton_session")));
    }
}
