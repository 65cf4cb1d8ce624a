//! The `task_attempts` history: one row per ended attempt, written by `finish` and `lose`, none
//! by stale or repeated reports.

use baton_core::TaskStatus;
use baton_store::dispatcher::reports::Finish;
use baton_store::dispatcher::tasks::Lost;
use baton_store::entity::task_attempt;
use baton_store::{Store, now_ms};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::support::{self, assigned_task, fence, runner};

pub async fn history(store: &Store, task_id: i64) -> Vec<task_attempt::Model> {
    task_attempt::Entity::find()
        .filter(task_attempt::Column::TaskId.eq(task_id))
        .order_by_asc(task_attempt::Column::Id)
        .all(store.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_ended_attempt_is_recorded_once() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (r1, r2) = (runner(&t, "r1").await, runner(&t, "r2").await);
    let task = assigned_task(&t, r1, 2).await;
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, 1_000).await.unwrap());
    assert!(history(&db.store, task.id).await.is_empty());

    assert_eq!(t.lose(task.id, task.epoch, "lease expired").await.unwrap(), Lost::Requeued);
    let e2 = t.claim(task.id, task.epoch + 1, r2).await.unwrap().unwrap();
    assert!(t.mark_running(fence(&t, task.id, e2).await, 2_000).await.unwrap());

    // Stale report from the first runner: no row.
    let stale = Finish {
        fence: fence(&t, task.id, task.epoch).await,
        status: TaskStatus::Succeeded,
        exit_code: Some(0),
        error: None,
    };
    assert!(!t.finish(stale).await.unwrap());
    assert_eq!(history(&db.store, task.id).await.len(), 1);

    let done = Finish {
        fence: fence(&t, task.id, e2).await,
        status: TaskStatus::TimedOut,
        exit_code: None,
        error: Some("timeout".into()),
    };
    assert!(t.finish(done.clone()).await.unwrap());
    assert!(t.finish(done).await.unwrap(), "repeat report");

    let rows = history(&db.store, task.id).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!((first.attempt, first.epoch, first.runner_id), (1, task.epoch, Some(r1)));
    assert_eq!(first.status, "lost");
    assert_eq!(first.error.as_deref(), Some("lease expired"));
    assert_eq!(first.started_at, Some(1_000));
    assert_eq!((second.attempt, second.epoch, second.runner_id), (2, e2, Some(r2)));
    assert_eq!(second.status, "timed_out");
    assert_eq!((second.exit_code, second.error.as_deref()), (None, Some("timeout")));
    assert_eq!(second.started_at, Some(2_000));
    assert!(second.finished_at >= first.finished_at && second.finished_at <= now_ms());

    let row = t.task(task.id).await.unwrap();
    assert_eq!((row.status.as_str(), row.attempt, row.epoch), ("timed_out", 2, e2));
}
