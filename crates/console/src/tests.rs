//! The console's files as a browser gets them: the page for every console address, security
//! headers, compression and revalidation, and rules the files must keep (no inline script, every
//! module import resolves, the first page stays small).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;

async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn body(resp: Response) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), 10 << 20).await.unwrap().to_vec()
}

#[tokio::test]
async fn every_console_address_gets_the_page_with_a_strict_policy() {
    for path in ["/", "/ui", "/ui/", "/ui/login", "/ui/projects/3/tasks/7"] {
        let resp = get(path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(resp.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert!(String::from_utf8(body(resp).await).unwrap().contains("/ui/assets/js/app.js"));
    }
    let missing = get("/ui/assets/js/nope.js", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_gzipped_on_request_and_revalidated_by_etag() {
    let plain = get("/ui/assets/js/app.js", &[]).await;
    assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    let etag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
    let plain = body(plain).await;
    let zipped = get("/ui/assets/js/app.js", &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    let zipped = body(zipped).await;
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, plain);
    let again = get("/ui/assets/js/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

/// Scripts only as files (the policy would block anything inline), no inline styles or event
/// handlers in markup, and no address outside this server.
#[test]
fn files_hold_no_inline_script_and_load_nothing_from_elsewhere() {
    for path in files() {
        let text = String::from_utf8(Assets::get(&path).unwrap().data.into_owned()).unwrap_or_default();
        if path.ends_with(".html") {
            assert!(!text.contains("<script>") && !text.contains("style=") && !text.contains(" onclick"), "{path}");
            for tag in text.split("<script").skip(1) {
                assert!(tag.trim_start().starts_with("type=\"module\" src=\"/ui/assets/"), "{path}: {tag}");
            }
        }
        for bad in ["http://", "https://", "innerHTML", "eval(", "new Function"] {
            let allowed = bad.starts_with("http") && path.ends_with(".svg");
            assert!(allowed || !text.contains(bad), "{path} contains {bad}");
        }
    }
}

/// Every relative module import names a file that exists.
#[test]
fn every_module_import_resolves() {
    for path in files().filter(|p| p.ends_with(".js")) {
        let text = String::from_utf8(Assets::get(&path).unwrap().data.into_owned()).unwrap();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for spec in imports(&text) {
            let target = resolve(dir, &spec);
            assert!(Assets::get(&target).is_some(), "{path} imports {spec}, but there is no {target}");
        }
    }
}

/// The login page — the first page anyone loads — stays well under 100 KB on the wire.
#[test]
fn the_first_page_is_small() {
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![
        "index.html".to_owned(),
        "style.css".into(),
        "icon.svg".into(),
        "js/app.js".into(),
        "js/pages/login.js".into(),
    ];
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let data = Assets::get(&path).unwrap().data;
        total += gzipped(&path, &data).len();
        if path.ends_with(".js") {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            todo.extend(imports(std::str::from_utf8(&data).unwrap()).iter().map(|s| resolve(&dir, s)));
        }
    }
    eprintln!("first page: {total} bytes gzipped, {} files", seen.len());
    assert!(total < 100_000, "the login page weighs {total} bytes");
}

/// The static `import … from './x.js'` specifiers of a module (dynamic imports are per page).
fn imports(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("import ") || l.starts_with("export ") && l.contains(" from "))
        .filter_map(|l| l.split(" from ").nth(1).or_else(|| l.strip_prefix("import ")))
        .filter_map(|s| s.trim().trim_end_matches(';').strip_prefix('\'')?.strip_suffix('\'').map(str::to_owned))
        .collect()
}

fn resolve(dir: &str, spec: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}
