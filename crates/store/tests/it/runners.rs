//! Registration tokens: single use unless minted with `max_uses` (0 = any number until expiry),
//! never used more often than allowed even by concurrent registrations, and the labels and
//! project of a runner come from its token.

use baton_store::dispatcher::Tables;
use baton_store::dispatcher::runners::{NewRegistrationToken, Registration, RunnerSpec, granted_labels};
use baton_store::now_ms;

use crate::support;

async fn mint(t: &Tables, hash: &str, labels: &[&str], max_uses: i32) {
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    let new = NewRegistrationToken {
        token_hash: hash,
        labels: &labels,
        project_id: Some(7),
        expires_at: now_ms() + 60_000,
        max_uses,
    };
    t.create_registration_token(new).await.unwrap();
}

async fn register(t: &Tables, hash: &str, name: &str, labels: &[&str]) -> Registration {
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    let spec = RunnerSpec { name, labels: &labels, capacity: 1, secret_hash: "digest" };
    t.register_runner(hash, spec).await.unwrap()
}

fn registered(r: Registration) -> (baton_store::entity::runner::Model, Vec<String>) {
    match r {
        Registration::Registered { runner, labels } => (*runner, labels),
        other => panic!("expected a registration, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_is_single_use_by_default() {
    let db = support::db().await;
    let t = db.dispatcher();
    mint(&t, "once", &[], 1).await;
    let (runner, _) = registered(register(&t, "once", "a", &[]).await);
    assert_eq!(runner.project_id, Some(7), "the project comes from the token");
    assert!(matches!(register(&t, "once", "b", &[]).await, Registration::UnknownToken));
}

#[tokio::test]
async fn max_uses_counts_and_zero_means_unlimited() {
    let db = support::db().await;
    let t = db.dispatcher();
    mint(&t, "three", &[], 3).await;
    for name in ["a", "b", "c"] {
        registered(register(&t, "three", name, &[]).await);
    }
    assert!(matches!(register(&t, "three", "d", &[]).await, Registration::UnknownToken));
    mint(&t, "many", &[], 0).await;
    for i in 0..20 {
        registered(register(&t, "many", &format!("m{i}"), &[]).await);
    }
}

#[tokio::test]
async fn a_refused_runner_does_not_use_the_token_up() {
    let db = support::db().await;
    let t = db.dispatcher();
    mint(&t, "once", &["linux"], 1).await;
    registered(register(&t, "once", "taken", &[]).await);
    mint(&t, "second", &["linux"], 1).await;
    let err = t.register_runner("second", RunnerSpec { name: "taken", labels: &[], capacity: 1, secret_hash: "d" });
    assert!(err.await.unwrap_err().to_string().contains("already exists"));
    assert!(matches!(register(&t, "second", "x", &["gpu"]).await, Registration::LabelNotGranted { .. }));
    registered(register(&t, "second", "free-name", &[]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_never_exceed_max_uses() {
    let db = support::db().await;
    let t = db.dispatcher();
    mint(&t, "two", &[], 2).await;
    let mut all = tokio::task::JoinSet::new();
    for i in 0..8 {
        let t = Tables::new(support::connect_to(db.url()).await);
        all.spawn(async move { register(&t, "two", &format!("r{i}"), &[]).await });
    }
    let mut ok = 0;
    while let Some(r) = all.join_next().await {
        if matches!(r.unwrap(), Registration::Registered { .. }) {
            ok += 1;
        }
    }
    assert_eq!(ok, 2);
}

#[tokio::test]
async fn labels_come_from_the_token() {
    let db = support::db().await;
    let t = db.dispatcher();
    mint(&t, "scoped", &["linux", "docker"], 0).await;
    assert_eq!(registered(register(&t, "scoped", "all", &[]).await).1, ["linux", "docker"]);
    assert_eq!(registered(register(&t, "scoped", "fewer", &["docker"]).await).1, ["docker"]);
    match register(&t, "scoped", "more", &["docker", "prod"]).await {
        Registration::LabelNotGranted { label, granted } => {
            assert_eq!((label.as_str(), granted), ("prod", vec!["linux".to_owned(), "docker".to_owned()]));
        }
        other => panic!("{other:?}"),
    }
    mint(&t, "open", &[], 0).await;
    assert_eq!(registered(register(&t, "open", "picks", &["gpu"]).await).1, ["gpu"]);
}

#[test]
fn granted_labels_narrow_only() {
    let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert_eq!(granted_labels(&s(&["a", "b"]), &s(&[])), Ok(s(&["a", "b"])));
    assert_eq!(granted_labels(&s(&["a", "b"]), &s(&["b"])), Ok(s(&["b"])));
    assert_eq!(granted_labels(&s(&["a"]), &s(&["c"])), Err("c".to_owned()));
    assert_eq!(granted_labels(&s(&[]), &s(&["c"])), Ok(s(&["c"])));
}
