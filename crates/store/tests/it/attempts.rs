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
        node_id: None,
    };
    assert!(!t.finish(stale).await.unwrap());
    assert_eq!(history(&db.store, task.id).await.len(), 1);

    let done = Finish {
        fence: fence(&t, task.id, e2).await,
        status: TaskStatus::TimedOut,
        exit_code: None,
        error: Some("timeout".into()),
        node_id: None,
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

/// The read side of the history (`views::task_attempts`): newest first, paged by attempt number,
/// each with the node its runner was connected to when it ended and the runner's name — `None`
/// once the runner row is gone.
#[tokio::test]
async fn the_history_reads_back_with_nodes_and_runner_names() {
    use baton_store::dispatcher::runners::Hello;
    use sea_orm::ConnectionTrait;

    let db = support::db().await;
    let t = db.dispatcher();
    let (r1, r2) = (runner(&t, "first-runner").await, runner(&t, "second-runner").await);
    t.runner_connected(r1, Hello { node_id: "node-a", version: "1", capacity: 2 }).await.unwrap();
    t.runner_connected(r2, Hello { node_id: "node-b", version: "1", capacity: 2 }).await.unwrap();
    let task = assigned_task(&t, r1, 3).await;
    assert!(db.store.task_attempts(task.id, None, 10).await.unwrap().is_empty());

    assert_eq!(t.lose(task.id, task.epoch, "lease expired").await.unwrap(), Lost::Requeued);
    // The runner moved to another node before its second attempt ended: the row says where it
    // was when it ended.
    let e2 = t.claim(task.id, task.epoch + 1, r1).await.unwrap().unwrap();
    t.runner_connected(r1, Hello { node_id: "node-c", version: "1", capacity: 2 }).await.unwrap();
    assert_eq!(t.lose(task.id, e2, "the runner restarted without it").await.unwrap(), Lost::Requeued);
    let e3 = t.claim(task.id, e2 + 1, r2).await.unwrap().unwrap();
    assert!(t.mark_running(fence(&t, task.id, e3).await, 3_000).await.unwrap());
    let done = Finish {
        fence: fence(&t, task.id, e3).await,
        status: TaskStatus::Failed,
        exit_code: Some(3),
        error: None,
        node_id: None,
    };
    assert!(t.finish(done).await.unwrap());

    let all = db.store.task_attempts(task.id, None, 10).await.unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|a| {
            let r = &a.attempt;
            (r.attempt, r.status.as_str(), r.node_id.as_deref(), a.runner_name.as_deref(), r.exit_code)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (3, "failed", Some("node-b"), Some("second-runner"), Some(3)),
            (2, "lost", Some("node-c"), Some("first-runner"), None),
            (1, "lost", Some("node-a"), Some("first-runner"), None),
        ]
    );
    assert_eq!(all[2].attempt.epoch, task.epoch);
    assert_eq!(all[0].attempt.started_at, Some(3_000));

    // Pages by attempt number, without gaps or repeats.
    let numbers = |rows: &[baton_store::views::AttemptView]| rows.iter().map(|a| a.attempt.attempt).collect::<Vec<_>>();
    assert_eq!(numbers(&db.store.task_attempts(task.id, None, 2).await.unwrap()), [3, 2]);
    assert_eq!(numbers(&db.store.task_attempts(task.id, Some(2), 2).await.unwrap()), [1]);
    assert!(db.store.task_attempts(task.id, Some(1), 2).await.unwrap().is_empty());
    // Another task's history is its own.
    let other = assigned_task(&t, r2, 1).await;
    assert!(db.store.task_attempts(other.id, None, 10).await.unwrap().is_empty());

    // A runner row that is gone leaves its attempts without a name, but with its id and node.
    db.store.conn().execute_unprepared(&format!("DELETE FROM runners WHERE id = {r1}")).await.unwrap();
    let after = db.store.task_attempts(task.id, None, 10).await.unwrap();
    assert_eq!(after[1].runner_name, None);
    assert_eq!((after[1].attempt.runner_id, after[1].attempt.node_id.as_deref()), (Some(r1), Some("node-c")));
    assert_eq!(after[0].runner_name.as_deref(), Some("second-runner"));
}

#[tokio::test]
async fn an_end_reported_through_a_known_node_records_that_node() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    // The runners table says another node: the reporting node's own word is what counts.
    t.runner_connected(r, baton_store::dispatcher::runners::Hello { node_id: "node-old", version: "1", capacity: 1 })
        .await
        .unwrap();
    let task = assigned_task(&t, r, 1).await;
    let done = Finish {
        fence: fence(&t, task.id, task.epoch).await,
        status: TaskStatus::Succeeded,
        exit_code: Some(0),
        error: None,
        node_id: Some("node-here".into()),
    };
    assert!(t.finish(done).await.unwrap());
    let rows = history(&db.store, task.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].node_id.as_deref(), rows[0].status.as_str()), (Some("node-here"), "succeeded"));
}
