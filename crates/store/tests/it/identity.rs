//! Gateway identity: users, login sessions and API tokens.

use baton_store::Error;
use baton_store::gateway::identity::{NewUser, UserChanges};
use baton_store::gateway::tokens::NewToken;
use baton_store::now_ms;

use crate::support;

fn user<'a>(name: &'a str) -> NewUser<'a> {
    NewUser { username: name, password_hash: "$argon2id$fake", admin: false }
}

fn digest(c: char) -> String {
    c.to_string().repeat(64)
}

#[tokio::test]
async fn create_user_and_duplicate_is_conflict() {
    let db = support::db().await;
    let g = db.gateway();
    assert_eq!(g.count_users().await.unwrap(), 0);
    let alice = g.create_user(NewUser { username: "alice", password_hash: "h1", admin: true }).await.unwrap();
    assert_eq!((alice.username.as_str(), alice.password_hash.as_str(), alice.admin), ("alice", "h1", true));

    let dup = g.create_user(user("alice")).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    assert_eq!(g.count_users().await.unwrap(), 1);

    let bob = g.create_user(user("bob")).await.unwrap();
    assert_eq!(g.user_by_name("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(g.user_by_name("carol").await.unwrap(), None);
    assert_eq!(g.user(alice.id).await.unwrap(), alice);
    assert_eq!(g.users(None, 100).await.unwrap(), vec![bob.clone(), alice.clone()], "newest first");
    assert!(matches!(g.user(bob.id + 10).await, Err(Error::NotFound(_))));

    // Renaming onto an existing name is a conflict too.
    let rename = UserChanges { username: Some("alice".into()), ..Default::default() };
    assert!(matches!(g.update_user(bob.id, rename).await, Err(Error::Conflict(_))));
    let promote = UserChanges { admin: Some(true), ..Default::default() };
    let bob2 = g.update_user(bob.id, promote).await.unwrap();
    assert!(bob2.admin);
    assert_eq!(bob2.username, "bob");
}

#[tokio::test]
async fn sessions_expire() {
    let db = support::db().await;
    let g = db.gateway();
    let u = g.create_user(user("u")).await.unwrap();
    let before = now_ms();
    g.create_session(u.id, &digest('a'), 60_000).await.unwrap();
    let after = now_ms();
    g.create_session(u.id, &digest('b'), 0).await.unwrap();
    g.create_session(u.id, &digest('c'), -1_000).await.unwrap();

    assert_eq!(g.session_user(&digest('a')).await.unwrap().map(|(u, _)| u), Some(u.clone()));
    // The session's own expiry comes with its user (callers may remember them until then).
    let (_, expires) = g.session_user(&digest('a')).await.unwrap().unwrap();
    assert!((before + 60_000..=after + 60_000).contains(&expires), "{expires}");
    assert_eq!(g.session_user(&digest('b')).await.unwrap().map(|(u, _)| u), None, "ttl 0 is expired");
    assert_eq!(g.session_user(&digest('c')).await.unwrap().map(|(u, _)| u), None);
    assert_eq!(g.session_user(&digest('d')).await.unwrap().map(|(u, _)| u), None, "unknown");

    assert!(g.delete_session(&digest('a')).await.unwrap(), "there was a session to end");
    assert!(!g.delete_session(&digest('a')).await.unwrap(), "ended already");
    assert_eq!(g.session_user(&digest('a')).await.unwrap().map(|(u, _)| u), None);
}

#[tokio::test]
async fn tokens_find_their_user_until_expiry() {
    let db = support::db().await;
    let g = db.gateway();
    let u = g.create_user(user("u")).await.unwrap();
    let forever = g.create_token(token(u.id, "ci", &digest('1'), None)).await.unwrap();
    let later = g.create_token(token(u.id, "later", &digest('2'), Some(now_ms() + 60_000))).await.unwrap();
    g.create_token(token(u.id, "old", &digest('3'), Some(now_ms() - 1))).await.unwrap();

    assert_eq!(forever.name, "ci");
    assert!(later.expires_at.is_some_and(|at| at > now_ms()));
    assert_eq!(g.token_user(&digest('1')).await.unwrap().map(|(u, _)| u), Some(u.clone()));
    assert_eq!(g.token_user(&digest('2')).await.unwrap().map(|(u, _)| u), Some(u.clone()));
    assert_eq!(g.token_user(&digest('3')).await.unwrap().map(|(u, _)| u), None, "expired");
    assert_eq!(g.token_user(&digest('4')).await.unwrap().map(|(u, _)| u), None, "unknown");

    let names: Vec<String> = g.tokens_of(u.id, None, 100).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["old", "later", "ci"], "newest first");

    // Token digests are unique.
    let dup = g.create_token(token(u.id, "again", &digest('1'), None)).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
}

#[tokio::test]
async fn delete_token_only_of_its_owner() {
    let db = support::db().await;
    let g = db.gateway();
    let alice = g.create_user(user("alice")).await.unwrap();
    let bob = g.create_user(user("bob")).await.unwrap();
    let tok = g.create_token(token(alice.id, "t", &digest('a'), None)).await.unwrap();

    let res = g.delete_token(bob.id, tok.id).await;
    assert!(matches!(res, Err(Error::NotFound(_))), "{res:?}");
    assert_eq!(g.token_user(&digest('a')).await.unwrap().map(|(u, _)| u), Some(alice.clone()), "still there");

    g.delete_token(alice.id, tok.id).await.unwrap();
    assert_eq!(g.token_user(&digest('a')).await.unwrap().map(|(u, _)| u), None);
    assert!(g.tokens_of(alice.id, None, 100).await.unwrap().is_empty());
    assert!(matches!(g.delete_token(alice.id, tok.id).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn delete_user_removes_sessions_and_tokens() {
    let db = support::db().await;
    let g = db.gateway();
    let u = g.create_user(user("u")).await.unwrap();
    let other = g.create_user(user("other")).await.unwrap();
    g.create_session(u.id, &digest('s'), 60_000).await.unwrap();
    g.create_token(token(u.id, "t", &digest('t'), None)).await.unwrap();
    g.create_session(other.id, &digest('o'), 60_000).await.unwrap();

    g.delete_user(u.id).await.unwrap();
    assert!(matches!(g.user(u.id).await, Err(Error::NotFound(_))));
    assert_eq!(g.session_user(&digest('s')).await.unwrap().map(|(u, _)| u), None);
    assert_eq!(g.token_user(&digest('t')).await.unwrap().map(|(u, _)| u), None);
    assert!(g.tokens_of(u.id, None, 100).await.unwrap().is_empty());
    assert_eq!(g.session_user(&digest('o')).await.unwrap().map(|(u, _)| u), Some(other), "others untouched");
    assert!(matches!(g.delete_user(u.id).await, Err(Error::NotFound(_))));
}

/// How many session rows there are, expired or not.
async fn session_rows(g: &baton_store::gateway::Tables) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    baton_store::entity::session::Entity::find().count(g.conn()).await.unwrap()
}

#[tokio::test]
async fn a_new_password_ends_every_session_but_the_one_kept() {
    let db = support::db().await;
    let g = db.gateway();
    let u = g.create_user(user("u")).await.unwrap();
    let other = g.create_user(user("other")).await.unwrap();
    for c in ['a', 'b', 'c'] {
        g.create_session(u.id, &digest(c), 60_000).await.unwrap();
    }
    g.create_session(other.id, &digest('o'), 60_000).await.unwrap();

    // Changing anything but the password keeps every session.
    g.update_user(u.id, UserChanges { admin: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(session_rows(&g).await, 4);

    let change = UserChanges {
        password_hash: Some("$argon2id$new".into()),
        keep_session: Some(digest('b')),
        ..Default::default()
    };
    let changed = g.update_user(u.id, change).await.unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(g.session_user(&digest('a')).await.unwrap().map(|(u, _)| u), None);
    assert_eq!(g.session_user(&digest('c')).await.unwrap().map(|(u, _)| u), None);
    assert_eq!(
        g.session_user(&digest('b')).await.unwrap().map(|(u, _)| u).map(|u| u.id),
        Some(u.id),
        "the kept one stays"
    );
    assert_eq!(g.session_user(&digest('o')).await.unwrap().map(|(u, _)| u), Some(other.clone()), "others untouched");

    // Without a session to keep (an administrator changing it), all of them end.
    g.update_user(u.id, UserChanges { password_hash: Some("h2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(g.session_user(&digest('b')).await.unwrap().map(|(u, _)| u), None);
    assert_eq!(session_rows(&g).await, 1);
    assert_eq!(g.end_sessions(other.id, None).await.unwrap(), 1);
    let missing = g.update_user(other.id + 100, UserChanges { password_hash: Some("h".into()), ..Default::default() });
    assert!(matches!(missing.await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn expired_sessions_and_tokens_are_swept_in_batches() {
    let db = support::db().await;
    let g = db.gateway();
    let u = g.create_user(user("u")).await.unwrap();
    for (i, c) in ['a', 'b', 'c'].into_iter().enumerate() {
        g.create_session(u.id, &digest(c), -1_000 - i as i64).await.unwrap();
    }
    g.create_session(u.id, &digest('l'), 60_000).await.unwrap();
    g.create_token(token(u.id, "old1", &digest('1'), Some(now_ms() - 1))).await.unwrap();
    g.create_token(token(u.id, "old2", &digest('2'), Some(now_ms() - 5_000))).await.unwrap();
    g.create_token(token(u.id, "later", &digest('3'), Some(now_ms() + 60_000))).await.unwrap();
    g.create_token(token(u.id, "forever", &digest('4'), None)).await.unwrap();

    let now = now_ms();
    assert_eq!(g.delete_expired_sessions(now, 2).await.unwrap(), 2, "one batch");
    assert_eq!(g.delete_expired_sessions(now, 2).await.unwrap(), 1, "the rest");
    assert_eq!(g.delete_expired_sessions(now, 2).await.unwrap(), 0);
    assert_eq!(session_rows(&g).await, 1, "the live session stays");
    assert_eq!(g.session_user(&digest('l')).await.unwrap().map(|(u, _)| u).map(|u| u.id), Some(u.id));

    assert_eq!(g.delete_expired_tokens(now, 10).await.unwrap(), 2);
    assert_eq!(g.delete_expired_tokens(now, 10).await.unwrap(), 0);
    let names: Vec<String> = g.tokens_of(u.id, None, 100).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["forever", "later"], "newest first");
}

fn token<'a>(user_id: i64, name: &'a str, token_hash: &'a str, expires_at: Option<i64>) -> NewToken<'a> {
    NewToken { user_id, name, token_hash, expires_at, project_id: None, role: None }
}
