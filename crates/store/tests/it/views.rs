//! `views`: the API's read-only task queries, `project_tasks` and `project_task`.

use baton_core::TaskStatus;
use baton_store::Error;
use baton_store::dispatcher::reports::Finish;
use baton_store::views::TaskFilter;

use crate::support::{self, new_task, runner};

fn ids(rows: &[baton_store::entity::task::Model]) -> Vec<i64> {
    rows.iter().map(|t| t.id).collect()
}

fn filter(limit: u64) -> TaskFilter {
    TaskFilter { limit, ..Default::default() }
}

#[tokio::test]
async fn project_tasks_newest_first_and_per_project() {
    let db = support::db().await;
    let t = db.dispatcher();
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(t.create_task(new_task(1, 10, i, 1)).await.unwrap().id);
        t.create_task(new_task(2, 20, 0, 1)).await.unwrap();
    }
    let listed = db.store.project_tasks(1, &filter(100)).await.unwrap();
    mine.reverse();
    assert_eq!(ids(&listed), mine);
    assert!(listed.iter().all(|t| t.project_id == 1));

    assert_eq!(ids(&db.store.project_tasks(1, &filter(2)).await.unwrap()), mine[..2].to_vec());
    assert!(db.store.project_tasks(3, &filter(10)).await.unwrap().is_empty());
}

#[tokio::test]
async fn project_tasks_filter_by_status_and_template() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let a = t.create_task(new_task(1, 10, 0, 1)).await.unwrap(); // stays queued
    let b = t.create_task(new_task(1, 11, 0, 1)).await.unwrap(); // assigned
    let c = t.create_task(new_task(1, 10, 0, 1)).await.unwrap(); // succeeded
    let d = t.create_task(new_task(1, 11, 0, 1)).await.unwrap(); // stays queued
    t.claim(b.id, 0, r).await.unwrap().unwrap();
    t.claim(c.id, 0, r).await.unwrap().unwrap();
    let done = Finish {
        fence: crate::support::fence(&t, c.id, 1).await,
        status: TaskStatus::Succeeded,
        exit_code: Some(0),
        error: None,
        node_id: None,
    };
    assert!(t.finish(done).await.unwrap());

    let by = |status: Option<TaskStatus>, template_id: Option<i64>| TaskFilter {
        status,
        template_id,
        before: None,
        limit: 100,
    };
    let list = |f: TaskFilter| {
        let store = db.store.clone();
        async move { ids(&store.project_tasks(1, &f).await.unwrap()) }
    };
    assert_eq!(list(by(Some(TaskStatus::Queued), None)).await, vec![d.id, a.id]);
    assert_eq!(list(by(Some(TaskStatus::Assigned), None)).await, vec![b.id]);
    assert_eq!(list(by(Some(TaskStatus::Succeeded), None)).await, vec![c.id]);
    assert_eq!(list(by(Some(TaskStatus::Failed), None)).await, Vec::<i64>::new());
    assert_eq!(list(by(None, Some(10))).await, vec![c.id, a.id]);
    assert_eq!(list(by(None, Some(11))).await, vec![d.id, b.id]);
    assert_eq!(list(by(Some(TaskStatus::Queued), Some(11))).await, vec![d.id]);
    assert_eq!(list(by(Some(TaskStatus::Queued), Some(12))).await, Vec::<i64>::new());
}

#[tokio::test]
async fn project_tasks_cursor_pages_without_gaps() {
    let db = support::db().await;
    let t = db.dispatcher();
    let mut all = Vec::new();
    for _ in 0..7 {
        all.push(t.create_task(new_task(1, 10, 0, 1)).await.unwrap().id);
    }
    all.reverse();

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let f = TaskFilter { before, limit: 3, ..Default::default() };
        let page = ids(&db.store.project_tasks(1, &f).await.unwrap());
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before = page.last().copied();
        seen.extend(page);
    }
    assert_eq!(seen, all);

    let f = TaskFilter { before: Some(all[2]), limit: 2, ..Default::default() };
    assert_eq!(ids(&db.store.project_tasks(1, &f).await.unwrap()), vec![all[3], all[4]]);
}

#[tokio::test]
async fn project_task_of_another_project_is_not_found() {
    let db = support::db().await;
    let t = db.dispatcher();
    let task = t.create_task(new_task(1, 10, 0, 1)).await.unwrap();

    assert_eq!(db.store.project_task(1, task.id).await.unwrap(), task);
    let wrong = db.store.project_task(2, task.id).await;
    assert!(matches!(wrong, Err(Error::NotFound(_))), "{wrong:?}");
    let missing = db.store.project_task(1, task.id + 1).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

#[tokio::test]
async fn project_tasks_by_ids_reads_only_that_projects_tasks() {
    let db = support::db().await;
    let t = db.dispatcher();
    let a = t.create_task(new_task(1, 10, 0, 1)).await.unwrap();
    let b = t.create_task(new_task(1, 10, 0, 1)).await.unwrap();
    let other = t.create_task(new_task(2, 20, 0, 1)).await.unwrap();

    let mut got = db.store.project_tasks_by_ids(1, &[a.id, b.id, other.id, b.id + 1000]).await.unwrap();
    got.sort_by_key(|t| t.id);
    assert_eq!(got, vec![a, b], "another project's task and a missing one are left out");
    assert!(db.store.project_tasks_by_ids(1, &[]).await.unwrap().is_empty());
}
