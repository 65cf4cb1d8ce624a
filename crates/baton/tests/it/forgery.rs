//! Cross-site request forgery: a page of another site can make a logged-in browser send writes
//! with the session cookie; such writes are refused (403 naming the origin), while the console's
//! own writes, clients that are no browsers, and requests with an API token go through.

use baton_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn writes_with_the_cookie_from_another_site_are_refused() {
    let srv = TestServer::start_with(|cfg| cfg.http.allowed_origins = vec!["https://console.example".into()]).await;
    let browser = srv.anonymous();
    browser.login("admin", baton_testkit::ADMIN_PASSWORD).await;
    let host = srv.url.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    let body = || Some(json!({"name": format!("p-{}", rand_suffix())}));

    let evil = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let r = browser.send_with(Method::POST, "/api/v1/projects", body(), &evil).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.error_message().contains("https://evil.example"), "{}", r.text);
    let r = browser.send_with(Method::POST, "/api/v1/projects", body(), &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(r.status, 403, "a cross-site write without Origin: {}", r.text);
    // Logging in from another site's page is refused too (login forgery).
    let login = json!({"username": "admin", "password": baton_testkit::ADMIN_PASSWORD});
    let r = srv.anonymous().send_with(Method::POST, "/api/v1/auth/login", Some(login), &evil).await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Reads are harmless: another origin cannot read the answer.
    assert_eq!(browser.send_with(Method::GET, "/api/v1/projects", None, &evil).await.status, 200);

    // The console itself, an allowed origin, and a client without browser headers may write.
    let same = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    assert_eq!(browser.send_with(Method::POST, "/api/v1/projects", body(), &same).await.status, 201);
    let allowed = [("origin", "https://console.example"), ("sec-fetch-site", "cross-site")];
    assert_eq!(browser.send_with(Method::POST, "/api/v1/projects", body(), &allowed).await.status, 201);
    assert_eq!(browser.send_with(Method::POST, "/api/v1/projects", body(), &[]).await.status, 201);
    // A bearer token is no cookie a foreign page could ride on.
    let token =
        browser.post("/api/v1/tokens", json!({"name": "t"})).await.expect(201)["token"].as_str().unwrap().to_owned();
    let r = srv.anonymous().with_token(&token).send_with(Method::POST, "/api/v1/projects", body(), &evil).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}
