//! The web console: HTML, CSS and plain ES modules embedded in the binary, which the gateway
//! serves at `/` and `/ui/…` on every node. The console is a client of the public JSON API and the
//! WebSocket like any other; this crate only hands out files, so it knows nothing of users or
//! permissions.
//!
//! Every path under `/ui/` that is not an asset answers with the same `index.html`: the page's
//! own router (`assets/js/app.js`) decides what to show, so a reload or a shared link works.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// What the console's pages may do: load only this server's files, talk only to this server
/// (its API and WebSocket), never be framed. No inline script or style anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The addresses that answer with the page.
pub const PAGES: &[&str] = &["/", "/ui", "/ui/", "/ui/{*path}"];
/// Where the page's files are, by their path under `assets/`.
pub const ASSETS: &str = "/ui/assets/{*path}";

/// Every route of the console: (method, path). The gateway's OpenAPI document describes them
/// beside the API's, and its tests check that it lists exactly these.
pub const ROUTES: &[(&str, &str)] =
    &[("GET", PAGES[0]), ("GET", PAGES[1]), ("GET", PAGES[2]), ("GET", PAGES[3]), ("GET", ASSETS)];

/// The console's routes. The gateway merges them next to the API.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    PAGES.iter().fold(Router::new().route(ASSETS, get(asset)), |r, path| r.route(path, get(page)))
}

/// The single page every console address loads.
async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return with_security(
            (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such file")
                .into_response(),
        );
    };
    // Files change only with the binary, but nodes of a cluster may run different versions
    // during an upgrade: revalidate every time (a 304 is cheap) rather than cache blindly.
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut resp = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) && compressible(path) {
        let mut r = Body::from(gzipped(path, &file.data)).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Body::from(file.data.into_owned()).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    with_security(resp)
}

fn with_security(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    resp
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|name| name.trim().eq_ignore_ascii_case("gzip")))
}

fn compressible(path: &str) -> bool {
    !path.ends_with(".png")
}

/// The gzip of a file, computed on first use and kept: the assets are few and small.
fn gzipped(path: &str, data: &[u8]) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(z) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return z.clone();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let z = std::io::Write::write_all(&mut enc, data).and_then(|()| enc.finish()).unwrap_or_default();
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_owned(), z.clone());
    z
}

/// The content type of each file extension; any other file is `application/octet-stream`.
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("json", "application/json"),
];
const OTHER_CONTENT: &str = "application/octet-stream";

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next();
    CONTENT_TYPES.iter().find(|(e, _)| Some(*e) == ext).map_or(OTHER_CONTENT, |(_, t)| t)
}

/// Every content type a file of the console may have, for the API's document.
pub fn content_types() -> impl Iterator<Item = &'static str> {
    CONTENT_TYPES.iter().map(|(_, t)| *t).chain([OTHER_CONTENT])
}

/// Every file of the console, for tests and page-weight checks.
pub fn files() -> impl Iterator<Item = String> {
    Assets::iter().map(|p| p.into_owned())
}

#[cfg(test)]
mod tests;
