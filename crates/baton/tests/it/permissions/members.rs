//! Members and roles: a project always keeps an owner, a change of role applies to the member's
//! very next request, the project list shows the caller's role in each project, and a schedule
//! outlives its creator's membership and account.

use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use serde_json::{Value, json};

use super::{assert_error, assert_needs, ids, items, set_role, team, user};

fn owners(members: &Value) -> Vec<i64> {
    items(members).iter().filter(|m| m["role"] == "owner").map(|m| m["user_id"].as_i64().unwrap()).collect()
}

async fn members(c: &Client, pid: i64) -> Value {
    c.get(&format!("/api/v1/projects/{pid}/members")).await.expect(200)
}

#[tokio::test]
async fn a_project_always_keeps_an_owner() {
    let srv = TestServer::start_without_runner().await;
    let admin = &srv.client;
    let admin_id = admin.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    let pid = admin.project().await;
    let olga = user(&srv, "olga").await;
    set_role(admin, pid, olga.id, "owner").await.expect(200);
    // The administrator made the project and was its first owner; olga stays as the only one.
    olga.client.delete(&format!("/api/v1/projects/{pid}/members/{admin_id}")).await.expect(204);
    assert_eq!(owners(&members(admin, pid).await), [olga.id]);

    let me = format!("/api/v1/projects/{pid}/members/{}", olga.id);
    assert_error(&set_role(&olga.client, pid, olga.id, "manager").await, 409, "conflict", "owner");
    assert_error(&set_role(admin, pid, olga.id, "viewer").await, 409, "conflict", "owner");
    assert_error(&olga.client.delete(&me).await, 409, "conflict", "owner");
    assert_error(&admin.delete(&me).await, 409, "conflict", "owner");
    let gone = admin.delete(&format!("/api/v1/users/{}", olga.id)).await;
    assert_error(&gone, 409, "conflict", &format!("project {pid}"));
    assert_eq!(owners(&members(admin, pid).await), [olga.id], "a refused change changed the owners");
    olga.client.get(&format!("/api/v1/projects/{pid}")).await.expect(200);

    // With a second owner, the first may step down, and then go.
    let oscar = user(&srv, "oscar").await;
    set_role(&olga.client, pid, oscar.id, "owner").await.expect(200);
    set_role(&olga.client, pid, olga.id, "viewer").await.expect(200);
    admin.delete(&format!("/api/v1/users/{}", olga.id)).await.expect(204);
    assert_eq!(owners(&members(admin, pid).await), [oscar.id]);
    assert_error(&admin.delete(&format!("/api/v1/users/{}", oscar.id)).await, 409, "conflict", "owner");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    let srv = TestServer::start_without_runner().await;
    let pid = srv.client.project().await;
    let (a, b) = (user(&srv, "ann").await, user(&srv, "ben").await);
    set_role(&srv.client, pid, a.id, "owner").await.expect(200);
    set_role(&srv.client, pid, b.id, "owner").await.expect(200);
    let admin_id = srv.client.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    a.client.delete(&format!("/api/v1/projects/{pid}/members/{admin_id}")).await.expect(204);
    let (ra, rb) = tokio::join!(set_role(&a.client, pid, b.id, "viewer"), set_role(&b.client, pid, a.id, "viewer"));
    let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
    statuses.sort();
    // Whoever lost either was no owner any more when asked (403) or would have left none (409).
    assert!(statuses == [200, 403] || statuses == [200, 409], "{} / {}", ra.text, rb.text);
    assert_eq!(owners(&members(&srv.client, pid).await).len(), 1, "{}", members(&srv.client, pid).await);
}

#[tokio::test]
async fn a_role_change_applies_to_the_members_very_next_request() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "t").await;
    let pid = t.pid;
    let tid = srv.client.template(pid, json!({"script": "true"})).await;
    let v = &t.viewer.client;
    let (_, token) = t.viewer.token(json!({})).await;
    let tasks = format!("/api/v1/projects/{pid}/tasks");
    let run = json!({"template_id": tid});
    assert_needs(&v.post(&tasks, run.clone()).await, "runner");
    assert_needs(&token.post(&tasks, run.clone()).await, "runner");

    set_role(&srv.client, pid, t.viewer.id, "runner").await.expect(200);
    let id = v.post(&tasks, run.clone()).await.expect(201)["id"].as_i64().unwrap();
    token.post(&tasks, run.clone()).await.expect(201);
    let templates = format!("/api/v1/projects/{pid}/templates");
    assert_needs(&v.post(&templates, json!({"name": "mine", "script": "true"})).await, "manager");

    set_role(&t.owner.client, pid, t.viewer.id, "manager").await.expect(200);
    v.post(&templates, json!({"name": "mine", "script": "true"})).await.expect(201);
    assert_needs(&v.patch(&format!("/api/v1/projects/{pid}"), json!({"description": "x"})).await, "owner");

    set_role(&t.owner.client, pid, t.viewer.id, "viewer").await.expect(200);
    assert_needs(&v.post(&format!("{tasks}/{id}/cancel"), json!({})).await, "runner");
    assert_needs(&token.post(&tasks, run).await, "runner");
    v.get(&format!("{tasks}/{id}")).await.expect(200);

    t.owner.client.delete(&format!("/api/v1/projects/{pid}/members/{}", t.viewer.id)).await.expect(204);
    assert_error(&v.get(&format!("/api/v1/projects/{pid}")).await, 404, "not_found", "");
    assert_error(&token.get(&format!("{tasks}/{id}")).await, 404, "not_found", "");
    assert_eq!(v.get("/api/v1/projects").await.expect(200)["items"], json!([]));
}

#[tokio::test]
async fn the_project_list_shows_the_callers_role_in_each_project() {
    let srv = TestServer::start_without_runner().await;
    let admin = &srv.client;
    let (p1, p2, p3) = (admin.project().await, admin.project().await, admin.project().await);
    let u = user(&srv, "uma").await;
    set_role(admin, p1, u.id, "manager").await.expect(200);
    set_role(admin, p2, u.id, "viewer").await.expect(200);
    let roles = |page: Value| -> Vec<(i64, String)> {
        items(&page).iter().map(|p| (p["id"].as_i64().unwrap(), p["role"].as_str().unwrap().to_owned())).collect()
    };
    let mine = roles(u.client.get("/api/v1/projects").await.expect(200));
    assert_eq!(mine, [(p2, "viewer".to_owned()), (p1, "manager".to_owned())]);
    let all = roles(admin.get("/api/v1/projects").await.expect(200));
    assert_eq!(all, [p3, p2, p1].map(|p| (p, "owner".to_owned())));
    // A narrowed token lists what it may see, with the role it acts with.
    let (_, only_p1) = u.token(json!({"project_id": p1})).await;
    assert_eq!(roles(only_p1.get("/api/v1/projects").await.expect(200)), [(p1, "manager".to_owned())]);
    let (_, viewer) = u.token(json!({"role": "viewer"})).await;
    assert_eq!(roles(viewer.get("/api/v1/projects").await.expect(200)), [p2, p1].map(|p| (p, "viewer".to_owned())));
    // The project itself answers with the same role.
    assert_eq!(u.client.get(&format!("/api/v1/projects/{p1}")).await.expect(200)["role"], "manager");
    assert_eq!(ids(&u.client.get("/api/v1/projects?limit=1").await.expect(200)), [p2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_keeps_firing_after_its_creator_leaves_the_project() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "s").await;
    let pid = t.pid;
    let tid = srv.client.template(pid, json!({"script": "true"})).await;
    let body = json!({"template_id": tid, "cron": "* * * * * *"});
    let s = t.manager.client.post(&format!("/api/v1/projects/{pid}/schedules"), body).await.expect(201);
    let sid = s["id"].as_i64().unwrap();
    assert_eq!(s["created_by"], t.manager.id, "{s}");
    let newest = |after: i64| {
        let admin = srv.client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let page = admin.get(&format!("/api/v1/projects/{pid}/tasks?limit=1")).await.expect(200);
                if let Some(task) = items(&page).first().filter(|t| t["id"].as_i64().unwrap() > after) {
                    return task.clone();
                }
                assert!(Instant::now() < deadline, "no task of the schedule after task {after} within 20 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let first = newest(0).await;
    assert_eq!(first["schedule_id"], sid, "{first}");

    t.owner.client.delete(&format!("/api/v1/projects/{pid}/members/{}", t.manager.id)).await.expect(204);
    assert_error(&t.manager.client.get(&format!("/api/v1/projects/{pid}")).await, 404, "not_found", "");
    // Of two tasks newer than the newest one now, the second was fired after the removal.
    let now = newest(0).await["id"].as_i64().unwrap();
    let next = newest(now).await["id"].as_i64().unwrap();
    let later = newest(next).await;
    assert_eq!(later["schedule_id"], sid, "{later}");

    // Nor does it depend on its creator's account.
    srv.client.delete(&format!("/api/v1/users/{}", t.manager.id)).await.expect(204);
    let now = newest(0).await["id"].as_i64().unwrap();
    let next = newest(now).await["id"].as_i64().unwrap();
    assert_eq!(newest(next).await["schedule_id"], sid);
    srv.client.patch(&format!("/api/v1/projects/{pid}/schedules/{sid}"), json!({"enabled": false})).await.expect(200);
}
