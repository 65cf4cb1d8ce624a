//! Where a browser's request comes from. Pages of other sites must not act with a user's session
//! cookie (cross-site request forgery), and may not open the event stream. Browsers say where a
//! request comes from (`Sec-Fetch-Site`, `Origin`) and scripts cannot forge either; clients that are
//! not browsers send neither and authenticate with a bearer token or their own cookie jar, so a
//! request without them is not a forgery.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::Error;

/// Whether `Origin` (if any) is this server's own origin or one of `allowed`. The server's own
/// origin is whatever host the browser addressed it by: behind a load balancer, the balancer's.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let own = [format!("http://{host}"), format!("https://{host}")];
    if own.iter().any(|o| o == origin) || allowed.iter().any(|o| o == origin) { Ok(()) } else { Err(origin.to_owned()) }
}

/// Refuses writes that a browser sends on behalf of another site's page, unless they carry a
/// bearer token (which that page could not have). Reads are safe: they change nothing, and
/// another origin cannot read the answer.
pub async fn forgery_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(why) = check(req.method(), req.headers(), &state.opts.allowed_origins) {
        return Error::forbidden(why).into_response();
    }
    next.run(req).await
}

fn check(method: &Method, headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || headers.contains_key("authorization") {
        return Ok(());
    }
    // `same-origin` is the console itself; `none` is the user's own doing (typed address, bookmark).
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("same-origin" | "none")) {
        return Ok(());
    }
    origin_allowed(headers, allowed).map_err(|origin| {
        format!(
            "a page of {origin} may not send {method} requests with this server's session cookie; \
             list it in http.allowed_origins, or use an API token"
        )
    })?;
    // A cross-site request whose browser sends no `Origin` (old browsers, some redirects).
    if matches!(site, Some("cross-site" | "same-site")) && !headers.contains_key("origin") {
        return Err(format!("{method} requests from other sites need an API token, not the session cookie"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn writes_from_other_sites_are_refused_unless_allowed_or_bearer() {
        let none: &[String] = &[];
        let evil = [("host", "baton:3000"), ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
        assert!(check(&Method::POST, &headers(&evil), none).is_err());
        assert!(check(&Method::DELETE, &headers(&[("origin", "https://evil.example"), ("host", "b")]), none).is_err());
        assert!(check(&Method::POST, &headers(&[("sec-fetch-site", "cross-site"), ("host", "b")]), none).is_err());
        assert!(check(&Method::GET, &headers(&evil), none).is_ok(), "reads are safe");
        let allowed = ["https://evil.example".to_owned()];
        assert!(check(&Method::POST, &headers(&evil), &allowed).is_ok());
        let bearer = [("origin", "https://evil.example"), ("authorization", "Bearer x"), ("host", "b")];
        assert!(check(&Method::POST, &headers(&bearer), none).is_ok());
    }

    #[test]
    fn the_console_and_clients_that_are_not_browsers_may_write() {
        let none: &[String] = &[];
        let own = [("host", "baton:3000"), ("origin", "http://baton:3000"), ("sec-fetch-site", "same-origin")];
        assert!(check(&Method::POST, &headers(&own), none).is_ok());
        assert!(
            check(&Method::POST, &headers(&[("host", "baton:3000"), ("origin", "http://baton:3000")]), none).is_ok()
        );
        assert!(check(&Method::PATCH, &headers(&[("host", "baton:3000")]), none).is_ok(), "curl sends neither");
    }
}
