//! Gateway catalog: projects and templates (uniqueness, updates, deletes, JSON fields).

use std::collections::BTreeMap;

use baton_store::Error;
use baton_store::gateway::projects::ProjectChanges;
use baton_store::gateway::templates::TemplateFields;

use crate::support;

fn fields(name: &str) -> TemplateFields {
    TemplateFields {
        name: name.to_owned(),
        script: "echo \"$GREETING\"\nexit 0".into(),
        shell: "bash".into(),
        env: BTreeMap::from([
            ("GREETING".to_owned(), "hällo \"world\"".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]),
        secrets: vec!["DB_PASSWORD".into(), "API_KEY".into()],
        labels: vec!["linux".into(), "gpu".into()],
        timeout_seconds: 600,
        max_attempts: 3,
        max_parallel: 2,
        priority: 4,
    }
}

fn assert_same(a: &TemplateFields, b: &TemplateFields) {
    assert_eq!(a.name, b.name);
    assert_eq!(a.script, b.script);
    assert_eq!(a.shell, b.shell);
    assert_eq!(a.env, b.env);
    assert_eq!(a.secrets, b.secrets);
    assert_eq!(a.labels, b.labels);
    assert_eq!(
        (a.timeout_seconds, a.max_attempts, a.max_parallel, a.priority),
        (b.timeout_seconds, b.max_attempts, b.max_parallel, b.priority)
    );
}

#[tokio::test]
async fn project_names_are_unique() {
    let db = support::db().await;
    let g = db.gateway();
    let p = g.create_project("web", "the site", 5).await.unwrap();
    assert_eq!((p.name.as_str(), p.description.as_str(), p.max_parallel), ("web", "the site", 5));
    assert_eq!(g.project(p.id).await.unwrap(), p);

    let dup = g.create_project("web", "again", 1).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    assert_eq!(g.projects(None, 10).await.unwrap(), vec![p]);
    assert!(matches!(g.project(999).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn projects_list_with_cursor() {
    let db = support::db().await;
    let g = db.gateway();
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        ids.push(g.create_project(name, "", 0).await.unwrap().id);
    }
    ids.reverse(); // newest first
    let page = |before, limit| {
        let g = g.clone();
        async move { g.projects(before, limit).await.unwrap().into_iter().map(|p| p.id).collect::<Vec<_>>() }
    };
    assert_eq!(page(None, 10).await, ids);
    assert_eq!(page(None, 2).await, ids[..2].to_vec());
    assert_eq!(page(Some(ids[1]), 10).await, ids[2..].to_vec());
    assert!(page(Some(ids[3]), 10).await.is_empty());
}

#[tokio::test]
async fn update_project_changes_only_given_fields() {
    let db = support::db().await;
    let g = db.gateway();
    let p = g.create_project("web", "old", 1).await.unwrap();
    g.create_project("api", "", 1).await.unwrap();

    let changes = ProjectChanges { description: Some("new".into()), max_parallel: Some(9), ..Default::default() };
    let q = g.update_project(p.id, changes).await.unwrap();
    assert_eq!((q.name.as_str(), q.description.as_str(), q.max_parallel), ("web", "new", 9));
    assert!(q.updated_at >= p.updated_at);
    assert_eq!(q.created_at, p.created_at);
    assert_eq!(g.project(p.id).await.unwrap(), q);

    let rename = ProjectChanges { name: Some("api".into()), ..Default::default() };
    let res = g.update_project(p.id, rename).await;
    assert!(matches!(res, Err(Error::Conflict(_))), "{res:?}");
    assert_eq!(g.project(p.id).await.unwrap().name, "web");

    let rename = ProjectChanges { name: Some("www".into()), ..Default::default() };
    assert_eq!(g.update_project(p.id, rename).await.unwrap().name, "www");
    let missing = g.update_project(999, ProjectChanges::default()).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

#[tokio::test]
async fn delete_project_removes_its_templates_only() {
    let db = support::db().await;
    let g = db.gateway();
    let p = g.create_project("p", "", 1).await.unwrap();
    let other = g.create_project("other", "", 1).await.unwrap();
    let t1 = g.create_template(p.id, fields("build")).await.unwrap();
    g.create_template(p.id, fields("deploy")).await.unwrap();
    let kept = g.create_template(other.id, fields("build")).await.unwrap();

    g.delete_project(p.id).await.unwrap();
    assert!(matches!(g.project(p.id).await, Err(Error::NotFound(_))));
    assert!(g.templates(p.id, None, 10).await.unwrap().is_empty());
    assert!(matches!(g.template(p.id, t1.id).await, Err(Error::NotFound(_))));
    assert_eq!(g.templates(other.id, None, 10).await.unwrap(), vec![kept]);
    assert!(matches!(g.delete_project(p.id).await, Err(Error::NotFound(_))));

    // The name is free again.
    let again = g.create_project("p", "", 1).await.unwrap();
    assert!(g.templates(again.id, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn template_names_are_unique_per_project() {
    let db = support::db().await;
    let g = db.gateway();
    let a = g.create_project("a", "", 1).await.unwrap();
    let b = g.create_project("b", "", 1).await.unwrap();
    let ta = g.create_template(a.id, fields("build")).await.unwrap();
    let tb = g.create_template(b.id, fields("build")).await.unwrap();
    assert_ne!(ta.id, tb.id);
    assert_eq!((ta.project_id, tb.project_id), (a.id, b.id));

    let dup = g.create_template(a.id, fields("build")).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    assert_eq!(g.templates(a.id, None, 10).await.unwrap(), vec![ta.clone()]);

    // Renaming onto a sibling's name is a conflict; onto another project's name is fine.
    let td = g.create_template(a.id, fields("deploy")).await.unwrap();
    let res = g.update_template(td.clone(), fields("build")).await;
    assert!(matches!(res, Err(Error::Conflict(_))), "{res:?}");
    assert_eq!(g.template(a.id, td.id).await.unwrap().name, "deploy");

    // A template of another project is "not found".
    assert!(matches!(g.template(b.id, ta.id).await, Err(Error::NotFound(_))));
    assert!(matches!(g.delete_template(b.id, ta.id).await, Err(Error::NotFound(_))));
    g.delete_template(a.id, ta.id).await.unwrap();
    assert_eq!(g.templates(a.id, None, 10).await.unwrap(), vec![td]);
    assert_eq!(g.template(b.id, tb.id).await.unwrap(), tb);
}

#[tokio::test]
async fn template_fields_round_trip() {
    let db = support::db().await;
    let g = db.gateway();
    let p = g.create_project("p", "", 1).await.unwrap();
    let sent = fields("build");
    let created = g.create_template(p.id, sent.clone()).await.unwrap();
    assert_same(&TemplateFields::of(&created).unwrap(), &sent);
    let read = g.template(p.id, created.id).await.unwrap();
    assert_eq!(read, created);
    assert_same(&TemplateFields::of(&read).unwrap(), &sent);

    // Read-modify-write keeps what was not changed.
    let mut changed = TemplateFields::of(&read).unwrap();
    changed.env.insert("NEW".into(), "ja=ja; echo 'x'".into());
    changed.env.remove("EMPTY");
    changed.secrets.clear();
    changed.labels = vec!["arm64".into()];
    changed.priority = -1;
    let updated = g.update_template(read.clone(), changed.clone()).await.unwrap();
    assert_eq!(updated.id, read.id);
    assert_eq!(updated.created_at, read.created_at);
    let again = g.template(p.id, read.id).await.unwrap();
    assert_same(&TemplateFields::of(&again).unwrap(), &changed);
    assert_eq!(again.secrets, "[]");

    // Empty collections round-trip too.
    let empty = TemplateFields { name: "bare".into(), shell: "sh".into(), ..Default::default() };
    let bare = g.create_template(p.id, empty.clone()).await.unwrap();
    assert_same(&TemplateFields::of(&bare).unwrap(), &empty);
}

#[tokio::test]
async fn corrupt_template_json_is_an_error() {
    let db = support::db().await;
    let g = db.gateway();
    let p = g.create_project("p", "", 1).await.unwrap();
    let mut t = g.create_template(p.id, fields("build")).await.unwrap();
    t.env = "{not json".into();
    assert!(matches!(TemplateFields::of(&t), Err(Error::Corrupt(_))));
}
