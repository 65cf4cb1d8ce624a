//! The web console's routes in the document. They are no API (HTML and the page's files, for
//! anyone), but the router serves them beside it, and the document lists every route the router
//! has: a client or a proxy rule written against it knows which paths are taken. The routes come
//! from `baton_console::ROUTES`, so a new console route appears here by itself.

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Required};

/// The tag of the console's operations (described in `mod.rs`).
pub const TAG: &str = "console";

/// A route of the router (axum's syntax, `{*rest}` for the rest of a path) as an OpenAPI path.
pub fn openapi_path(route: &str) -> String {
    route.replace("{*", "{")
}

/// Adds the console's operations. Called after `common::apply`: the console answers none of the
/// API's JSON errors, only what is described here.
pub fn apply(doc: &mut OpenApi) {
    for &(method, route) in baton_console::ROUTES {
        debug_assert_eq!(method, "GET", "the console only serves GET");
        let mut op = if route == baton_console::ASSETS { asset() } else { page(route) };
        super::common::answer_headers(&mut op);
        doc.paths.add_path_operation(openapi_path(route), vec![HttpMethod::Get], op);
    }
}

/// The operation id of a route: `console` and its path's words (`console_ui_path` for
/// `/ui/{*path}`, `console_root` for `/`).
fn operation_id(route: &str) -> String {
    let words: Vec<&str> = route.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let trailing = if route.len() > 1 && route.ends_with('/') { "_index" } else { "" };
    if words.is_empty() { "console_root".to_owned() } else { format!("console_{}{trailing}", words.join("_")) }
}

fn page(route: &str) -> Operation {
    let ok = with_etag(ResponseBuilder::new().description("the console's page").content("text/html", text()));
    let mut op = operation(route, "The web console's page (the page's own script shows what the address names)")
        .response("200", ok.build());
    if route.contains('{') {
        op = op.parameter(rest_of_path("any address under `/ui/`; the page's script reads it"));
    }
    op.build()
}

fn asset() -> Operation {
    let ok = baton_console::content_types()
        .fold(ResponseBuilder::new().description("the file"), |r, media| r.content(strip_params(media), text()));
    let missing = ResponseBuilder::new().description("no such file").content("text/plain", text()).build();
    operation(baton_console::ASSETS, "A file of the web console (scripts, styles, icons)")
        .parameter(rest_of_path("the file's path, e.g. `js/app.js`"))
        .response("200", with_etag(ok).build())
        .response("404", missing)
        .build()
}

/// What every console operation shares: no credentials, revalidation by ETag.
fn operation(route: &str, summary: &str) -> OperationBuilder {
    let if_none_match = ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("the `ETag` of a copy the client holds"))
        .schema(Some(Object::with_type(Type::String)));
    let unchanged = ResponseBuilder::new().description("unchanged since the `ETag` in `If-None-Match`").build();
    OperationBuilder::new()
        .operation_id(Some(operation_id(route)))
        .tag(TAG)
        .summary(Some(summary))
        .security(SecurityRequirement::default())
        .parameter(if_none_match)
        .response("304", unchanged)
}

fn rest_of_path(description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name("path")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(Object::with_type(Type::String)))
}

fn with_etag(resp: ResponseBuilder) -> ResponseBuilder {
    let etag = utoipa::openapi::header::HeaderBuilder::new()
        .schema(Some(Object::with_type(Type::String)))
        .description(Some("the file's version, for `If-None-Match`"))
        .build();
    resp.header("ETag", etag)
}

fn text() -> Content {
    Content::new(Some(Object::with_type(Type::String)))
}

/// `text/html; charset=utf-8` → `text/html`: a document's media types name no parameters.
fn strip_params(media: &str) -> &str {
    media.split(';').next().unwrap_or(media).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_the_path() {
        let ids: Vec<String> = baton_console::ROUTES.iter().map(|(_, r)| operation_id(r)).collect();
        assert_eq!(
            ids,
            ["console_root", "console_ui", "console_ui_index", "console_ui_path", "console_ui_assets_path"]
        );
        assert_eq!(openapi_path("/ui/assets/{*path}"), "/ui/assets/{path}");
    }
}
