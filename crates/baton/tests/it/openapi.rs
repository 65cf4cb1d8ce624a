//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, served to anyone, describes exactly the
//! routes of the router, the console's too (the outside validator and fuzzer in
//! `scripts/check-api.sh` check the rest).

use std::collections::BTreeSet;

use baton_testkit::TestServer;

#[tokio::test]
async fn the_served_document_describes_every_route_and_only_those() {
    let srv = TestServer::start().await;
    let r = srv.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers.contains_key("x-baton-node"));
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, baton_gateway::openapi_document().unwrap());

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    // Every route of the router, the web console's pages and files too (`{*rest}` is axum's
    // syntax for the rest of a path, a plain parameter in OpenAPI's).
    let routes: BTreeSet<(String, String)> =
        baton_gateway::served_routes().map(|(m, p)| (m.to_string(), p.replace("{*", "{"))).collect();
    assert_eq!(documented, routes);
    assert!(routes.contains(&("GET".to_owned(), "/ui/{path}".to_owned())), "{routes:?}");

    // Errors have one schema, referred to by every error answer.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    // The request id is described, and optional (`code` and `message` are always there).
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]), "{detail}");
    let request_id = &detail["properties"]["request_id"];
    assert!(request_id["type"] == "string" || request_id["type"] == serde_json::json!(["string", "null"]), "{detail}");
    let answer_headers = doc["paths"]["/api/v1/projects"]["get"]["responses"]["200"]["headers"].clone();
    assert!(
        answer_headers.get("X-Request-Id").is_some() && answer_headers.get("X-Baton-Node").is_some(),
        "{answer_headers}"
    );
    for name in ["X-Request-Id", "X-Baton-Node"] {
        assert_eq!(doc["components"]["headers"][name]["required"], true, "every answer has {name}");
    }
    // A task's status is one of the states the server knows, as the store writes them.
    let states = &doc["components"]["schemas"]["TaskStatus"]["enum"];
    assert_eq!(states.as_array().map(Vec::len), Some(8), "{states}");
    assert!(states.as_array().unwrap().contains(&"timed_out".into()), "{states}");
    let status = &doc["components"]["schemas"]["Task"]["properties"]["status"]["$ref"];
    assert_eq!(status, "#/components/schemas/TaskStatus");
    let not_found = &doc["paths"]["/api/v1/projects/{pid}"]["get"]["responses"]["404"];
    assert_eq!(not_found["$ref"], "#/components/responses/NotFound");
}
