//! Project members: a project always keeps an owner, also against two owners demoting each
//! other at once; a user who is a project's only owner cannot be deleted; memberships go with
//! their project or user. And the audit log's paging, filters and retention.

use baton_store::entity::audit_entry;
use baton_store::gateway::Tables;
use baton_store::gateway::audit::AuditFilter;
use baton_store::gateway::identity::NewUser;
use baton_store::gateway::projects::NewProject;
use baton_store::{Error, now_ms};

use crate::support;

async fn user(g: &Tables, name: &str) -> i64 {
    g.create_user(NewUser { username: name, password_hash: "x", admin: false }).await.unwrap().id
}

async fn project(g: &Tables, owner: i64) -> i64 {
    let new = NewProject { name: &format!("p{}", now_ms() + owner), description: "", max_parallel: 0 };
    g.create_project_owned(new, owner).await.unwrap().id
}

#[tokio::test]
async fn a_project_keeps_at_least_one_owner() {
    let db = support::db().await;
    let g = db.gateway();
    let (ann, bob) = (user(&g, "ann").await, user(&g, "bob").await);
    let pid = project(&g, ann).await;
    assert_eq!(g.member_role(pid, ann).await.unwrap().as_deref(), Some("owner"), "the creator owns it");
    assert!(matches!(g.set_member(pid, ann, "viewer").await, Err(Error::Conflict(_))));
    assert!(matches!(g.remove_member(pid, ann).await, Err(Error::Conflict(_))));
    assert_eq!(g.set_member(pid, bob, "owner").await.unwrap().username, "bob");
    g.set_member(pid, ann, "viewer").await.unwrap();
    assert!(matches!(g.remove_member(pid, bob).await, Err(Error::Conflict(_))), "bob is the last owner now");
    let members = g.members(pid, None, 10).await.unwrap();
    let roles: Vec<(&str, &str)> = members.iter().map(|m| (m.username.as_str(), m.role.as_str())).collect();
    assert_eq!(roles, [("bob", "owner"), ("ann", "viewer")]);
    assert!(matches!(g.remove_member(pid, 999).await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    let db = support::db().await;
    let g = db.gateway();
    for round in 0..5 {
        let (a, b) = (user(&g, &format!("a{round}")).await, user(&g, &format!("b{round}")).await);
        let pid = project(&g, a).await;
        g.set_member(pid, b, "owner").await.unwrap();
        let (x, y) =
            (Tables::new(support::connect_to(db.url()).await), Tables::new(support::connect_to(db.url()).await));
        let (ra, rb) = tokio::join!(x.set_member(pid, a, "manager"), y.set_member(pid, b, "manager"));
        assert!(ra.is_ok() != rb.is_ok(), "exactly one demotion wins: {ra:?} {rb:?}");
        let owners = g.members(pid, None, 10).await.unwrap().into_iter().filter(|m| m.role == "owner").count();
        assert_eq!(owners, 1);
    }
}

#[tokio::test]
async fn a_sole_owner_cannot_be_deleted_and_memberships_go_with_their_user_or_project() {
    let db = support::db().await;
    let g = db.gateway();
    let (ann, bob) = (user(&g, "ann").await, user(&g, "bob").await);
    let pid = project(&g, ann).await;
    g.set_member(pid, bob, "runner").await.unwrap();
    assert!(matches!(g.delete_user(ann).await, Err(Error::Conflict(_))));
    g.delete_user(bob).await.unwrap();
    assert_eq!(g.member_role(pid, bob).await.unwrap(), None);
    assert_eq!(g.projects_of(ann, None, 10).await.unwrap().len(), 1);
    g.delete_project(pid).await.unwrap();
    assert!(g.projects_of(ann, None, 10).await.unwrap().is_empty());
    g.delete_user(ann).await.unwrap();
}

fn entry(time: i64, project_id: Option<i64>, action: &str) -> audit_entry::Model {
    audit_entry::Model {
        id: 0,
        time,
        user_id: Some(1),
        username: "ann".into(),
        token_id: None,
        client_ip: "203.0.113.7".into(),
        node: "n1".into(),
        action: action.into(),
        target: "/api/v1/x".into(),
        detail: String::new(),
        project_id,
        status: 200,
    }
}

#[tokio::test]
async fn the_audit_log_pages_filters_and_is_swept_by_age() {
    let db = support::db().await;
    let g = db.gateway();
    let now = now_ms();
    for i in 0..5 {
        g.append_audit(entry(now - 10_000 + i, Some(1), "templates.update")).await.unwrap();
        g.append_audit(entry(now + i, Some(2), "tasks.create")).await.unwrap();
    }
    let all = g.audit(AuditFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let first = g.audit(AuditFilter::default(), 4).await.unwrap();
    let next = AuditFilter { before: first.last().map(|e| e.id), ..Default::default() };
    let second = g.audit(next, 100).await.unwrap();
    assert_eq!(first.len() + second.len(), 10, "pages without gaps or repeats");
    let of_two = AuditFilter { project_id: Some(2), ..Default::default() };
    assert_eq!(g.audit(of_two, 100).await.unwrap().len(), 5);
    let updates = AuditFilter { action: Some("templates.update".into()), ..Default::default() };
    assert!(g.audit(updates, 100).await.unwrap().iter().all(|e| e.project_id == Some(1)));
    assert_eq!(g.delete_audit_before(now - 5_000, 2).await.unwrap(), 2, "in batches");
    assert_eq!(g.delete_audit_before(now - 5_000, 100).await.unwrap(), 3);
    assert_eq!(g.audit(AuditFilter::default(), 100).await.unwrap().len(), 5);
}
