//! Runners' reports are fenced by (task, epoch, runner): a runner can never start, finish, give
//! up or write the log of a task assigned to another runner, even one that knows its id and
//! epoch — and such a report changes nothing.

use baton_core::TaskStatus;
use baton_store::dispatcher::logs::Appended;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::dispatcher::tasks::Lost;
use baton_store::{LogLine, LogStream, now_ms};

use crate::support::{self, assigned_task, runner};

fn lines() -> Vec<LogLine> {
    vec![LogLine { seq: 1, time_ms: 1, stream: LogStream::Stdout, text: "forged".into() }]
}

#[tokio::test]
async fn another_runners_reports_change_nothing() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (owner, intruder) = (runner(&t, "owner").await, runner(&t, "intruder").await);
    let task = assigned_task(&t, owner, 2).await;
    let forged = Fence { task_id: task.id, epoch: task.epoch, runner_id: intruder };

    assert!(!t.mark_running(forged, now_ms()).await.unwrap());
    assert_eq!(t.append_log(forged, &lines()).await.unwrap(), Appended::Stale);
    let fin = Finish { fence: forged, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None };
    assert!(!t.finish(fin).await.unwrap());
    assert_eq!(t.give_up(forged, "forged").await.unwrap(), Lost::Stale);
    let row = t.task(task.id).await.unwrap();
    assert_eq!((row.status.as_str(), row.epoch, row.runner_id), ("assigned", task.epoch, Some(owner)));
    assert!(db.store.log_page(task.id, 0, 10).await.unwrap().lines.is_empty(), "no forged line was stored");

    // The owner's reports still go through, and a running task is just as safe.
    let mine = Fence { runner_id: owner, ..forged };
    assert!(t.mark_running(mine, now_ms()).await.unwrap());
    assert!(!t.mark_running(forged, now_ms()).await.unwrap(), "a repeat is only the owner's");
    let fin = Finish { fence: forged, status: TaskStatus::Failed, exit_code: Some(1), error: None, node_id: None };
    assert!(!t.finish(fin).await.unwrap());
    assert_eq!(t.give_up(forged, "forged").await.unwrap(), Lost::Stale);
    assert_eq!(t.task(task.id).await.unwrap().status, "running");
    let fin = Finish { fence: mine, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None };
    assert!(t.finish(fin.clone()).await.unwrap());
    assert!(t.finish(fin).await.unwrap(), "the owner's repeated report");
    let fin = Finish { fence: forged, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None };
    assert!(!t.finish(fin).await.unwrap(), "not even a repeat of a recorded end");
}

#[tokio::test]
async fn a_runner_gives_up_only_its_own_attempt() {
    let db = support::db().await;
    let t = db.dispatcher();
    let owner = runner(&t, "owner").await;
    let task = assigned_task(&t, owner, 2).await;
    let mine = Fence { task_id: task.id, epoch: task.epoch, runner_id: owner };
    assert_eq!(t.give_up(mine, "shutting down").await.unwrap(), Lost::Requeued);
    assert_eq!(t.give_up(mine, "again").await.unwrap(), Lost::Stale, "fenced by the new epoch");
    let row = t.task(task.id).await.unwrap();
    assert_eq!((row.status.as_str(), row.attempt, row.runner_id), ("queued", 2, None));
}
