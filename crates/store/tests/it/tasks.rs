//! The fenced task state machine of `dispatcher::Tables`: create, claim, run, finish, lose,
//! cancel, the queue head, active counts and expired leases.

use baton_core::TaskStatus;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::dispatcher::tasks::{Cancel, Lost};
use baton_store::{Error, TaskSpec, now_ms};

use crate::support::{self, assigned_task, fence, new_task, runner};

fn finish(fence: Fence, status: TaskStatus, exit_code: Option<i32>) -> Finish {
    Finish { fence, status, exit_code, error: None, node_id: None }
}

#[tokio::test]
async fn create_task_is_queued_at_epoch_zero_attempt_one() {
    let db = support::db().await;
    let t = db.dispatcher();
    let new = new_task(3, 4, 5, 0);
    let spec = new.spec.clone();
    let row = t.create_task(new).await.unwrap();
    assert_eq!(row.status, "queued");
    assert_eq!(row.epoch, 0);
    assert_eq!(row.attempt, 1);
    assert_eq!(row.max_attempts, 1, "max_attempts is at least 1");
    assert_eq!((row.project_id, row.template_id, row.priority), (3, 4, 5));
    assert_eq!(row.runner_id, None);
    assert!(!row.cancel_requested);
    assert_eq!(row.created_by, Some(7));
    assert_eq!(TaskSpec::from_json(&row.spec).unwrap(), spec);
    assert_eq!(t.task(row.id).await.unwrap(), row);
    assert!(matches!(t.task(row.id + 100).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn claim_with_current_epoch_wins_once() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (r1, r2) = (runner(&t, "r1").await, runner(&t, "r2").await);
    let task = t.create_task(new_task(1, 1, 0, 1)).await.unwrap();

    assert_eq!(t.claim(task.id, 0, r1).await.unwrap(), Some(1));
    assert_eq!(t.claim(task.id, 0, r2).await.unwrap(), None, "old epoch loses");
    assert_eq!(t.claim(task.id, 1, r2).await.unwrap(), None, "not queued any more");

    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "assigned");
    assert_eq!(row.epoch, 1);
    assert_eq!(row.runner_id, Some(r1));
    assert!(row.assigned_at.is_some());
}

#[tokio::test]
async fn queue_depth_counts_queued_tasks_only() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r1 = runner(&t, "r1").await;
    assert_eq!(t.queue_depth().await.unwrap(), 0);
    let a = t.create_task(new_task(1, 1, 0, 1)).await.unwrap();
    t.create_task(new_task(1, 1, 0, 1)).await.unwrap();
    t.create_task(new_task(2, 2, 0, 1)).await.unwrap();
    assert_eq!(t.queue_depth().await.unwrap(), 3);
    t.claim(a.id, a.epoch, r1).await.unwrap();
    assert_eq!(t.queue_depth().await.unwrap(), 2, "an assigned task is no longer queued");
}

#[tokio::test]
async fn concurrent_claims_have_exactly_one_winner() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (r1, r2) = (runner(&t, "r1").await, runner(&t, "r2").await);
    for _ in 0..10 {
        let task = t.create_task(new_task(1, 1, 0, 1)).await.unwrap();
        let (a, b) = (db.dispatcher(), db.dispatcher());
        let (ra, rb) = tokio::join!(a.claim(task.id, 0, r1), b.claim(task.id, 0, r2));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.is_some() as u8 + rb.is_some() as u8, 1, "{ra:?} {rb:?}");
        let winner = if ra.is_some() { r1 } else { r2 };
        let row = t.task(task.id).await.unwrap();
        assert_eq!(row.runner_id, Some(winner));
        assert_eq!(row.epoch, 1);
    }
}

#[tokio::test]
async fn mark_running_needs_current_epoch() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;

    assert!(!t.mark_running(fence(&t, task.id, task.epoch - 1).await, 111).await.unwrap());
    assert!(!t.mark_running(fence(&t, task.id, task.epoch + 1).await, 111).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap().status, "assigned");

    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, 111).await.unwrap());
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "running");
    assert_eq!(row.started_at, Some(111));

    // A re-sent report is harmless and does not move started_at.
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, 222).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap().started_at, Some(111));
}

#[tokio::test]
async fn finish_with_stale_epoch_changes_nothing() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());
    let before = t.task(task.id).await.unwrap();

    let stale = finish(fence(&t, task.id, task.epoch - 1).await, TaskStatus::Succeeded, Some(0));
    assert!(!t.finish(stale).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap(), before);

    // The connection went back to the pool in a usable state after the early return.
    let ok = finish(fence(&t, task.id, task.epoch).await, TaskStatus::Failed, Some(3));
    assert!(t.finish(ok).await.unwrap());
}

#[tokio::test]
async fn finish_records_final_state_and_repeat_is_harmless() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());

    let mut f = finish(fence(&t, task.id, task.epoch).await, TaskStatus::Failed, Some(2));
    f.error = Some("exit 2".into());
    assert!(t.finish(f).await.unwrap());
    let done = t.task(task.id).await.unwrap();
    assert_eq!(done.status, "failed");
    assert_eq!(done.exit_code, Some(2));
    assert_eq!(done.error.as_deref(), Some("exit 2"));
    assert!(done.finished_at.is_some());
    assert_eq!(done.epoch, task.epoch);

    // Repeated (or contradicting) report of the same attempt: accepted, nothing changes.
    assert!(t.finish(finish(fence(&t, task.id, task.epoch).await, TaskStatus::Succeeded, Some(0))).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap(), done);
    // A re-sent "started" of the same attempt is acknowledged but changes nothing.
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap(), done);
    assert!(t.tasks_of_runner(r).await.unwrap().is_empty());
}

#[tokio::test]
async fn finish_of_unknown_task_is_not_found() {
    let db = support::db().await;
    let t = db.dispatcher();
    let res = t.finish(finish(fence(&t, 999, 1).await, TaskStatus::Succeeded, Some(0))).await;
    assert!(matches!(res, Err(Error::NotFound(_))), "{res:?}");
}

#[tokio::test]
async fn lose_requeues_while_attempts_are_left() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 2).await;
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());

    assert_eq!(t.lose(task.id, task.epoch, "runner gone").await.unwrap(), Lost::Requeued);
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "queued");
    assert_eq!(row.attempt, 2);
    assert_eq!(row.epoch, task.epoch + 1);
    assert_eq!(row.runner_id, None);
    assert_eq!((row.assigned_at, row.started_at, row.finished_at), (None, None, None));

    // The old runner is fenced out.
    assert!(!t.finish(finish(fence(&t, task.id, task.epoch).await, TaskStatus::Succeeded, Some(0))).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap(), row);
    // And the new attempt can be claimed at the new epoch.
    assert_eq!(t.claim(task.id, row.epoch, r).await.unwrap(), Some(row.epoch + 1));
}

#[tokio::test]
async fn lose_ends_task_when_no_attempt_is_left() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 2).await;
    assert_eq!(t.lose(task.id, task.epoch, "first").await.unwrap(), Lost::Requeued);
    let e = t.claim(task.id, task.epoch + 1, r).await.unwrap().unwrap();

    assert_eq!(t.lose(task.id, e, "heartbeat lease expired").await.unwrap(), Lost::Ended);
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "lost");
    assert_eq!(row.attempt, 2);
    assert_eq!(row.epoch, e + 1);
    assert_eq!(row.error.as_deref(), Some("heartbeat lease expired"));
    assert!(row.finished_at.is_some());

    // A final task cannot be lost again, whatever the epoch.
    assert_eq!(t.lose(task.id, row.epoch, "again").await.unwrap(), Lost::Stale);
    assert_eq!(t.task(task.id).await.unwrap(), row);
}

#[tokio::test]
async fn lose_of_a_cancelling_task_cancels_it() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 3).await;
    assert!(matches!(t.cancel(task.id).await.unwrap(), Cancel::Requested { .. }));

    assert_eq!(t.lose(task.id, task.epoch, "runner gone").await.unwrap(), Lost::Cancelled);
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "cancelled");
    assert_eq!(row.attempt, 1, "no new attempt for a cancelled task");
    assert_eq!(row.epoch, task.epoch + 1);
    assert!(row.finished_at.is_some());
}

#[tokio::test]
async fn unassign_queues_again_without_using_up_the_attempt() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;

    assert_eq!(t.unassign(task.id, task.epoch).await.unwrap(), Lost::Requeued);
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "queued");
    assert_eq!(row.attempt, 1, "the attempt never ran, so it is not counted");
    assert_eq!(row.epoch, task.epoch + 1, "the undelivered assignment is fenced out");
    assert_eq!((row.runner_id, row.assigned_at, row.finished_at), (None, None, None));
    assert!(crate::attempts::history(&db.store, task.id).await.is_empty(), "no history row: the attempt never ran");
    assert!(!t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());

    // Once only, and never for a task that started meanwhile.
    assert_eq!(t.unassign(task.id, task.epoch).await.unwrap(), Lost::Stale);
    let e = t.claim(task.id, row.epoch, r).await.unwrap().unwrap();
    assert!(t.mark_running(fence(&t, task.id, e).await, now_ms()).await.unwrap());
    assert_eq!(t.unassign(task.id, e).await.unwrap(), Lost::Stale);
    assert_eq!(t.task(task.id).await.unwrap().status, "running");
}

#[tokio::test]
async fn unassign_of_a_cancelling_task_cancels_it() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 3).await;
    assert!(matches!(t.cancel(task.id).await.unwrap(), Cancel::Requested { .. }));

    assert_eq!(t.unassign(task.id, task.epoch).await.unwrap(), Lost::Cancelled);
    let row = t.task(task.id).await.unwrap();
    assert_eq!((row.status.as_str(), row.attempt, row.epoch), ("cancelled", 1, task.epoch + 1));
    assert!(row.finished_at.is_some());
}

#[tokio::test]
async fn lose_with_wrong_epoch_or_state_is_stale() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 3).await;

    assert_eq!(t.lose(task.id, task.epoch - 1, "x").await.unwrap(), Lost::Stale);
    assert_eq!(t.lose(task.id, task.epoch + 1, "x").await.unwrap(), Lost::Stale);
    assert_eq!(t.task(task.id).await.unwrap(), task);

    let queued = t.create_task(new_task(1, 1, 0, 3)).await.unwrap();
    assert_eq!(t.lose(queued.id, queued.epoch, "x").await.unwrap(), Lost::Stale);
    assert_eq!(t.task(queued.id).await.unwrap(), queued);
    assert_eq!(t.lose(12345, 0, "x").await.unwrap(), Lost::Stale);
}

#[tokio::test]
async fn cancel_queued_task_cancels_at_once() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = t.create_task(new_task(1, 1, 0, 1)).await.unwrap();

    assert_eq!(t.cancel(task.id).await.unwrap(), Cancel::Cancelled);
    let row = t.task(task.id).await.unwrap();
    assert_eq!(row.status, "cancelled");
    assert!(row.finished_at.is_some());
    assert_eq!(t.claim(task.id, row.epoch, r).await.unwrap(), None, "a cancelled task is never claimed");
    assert!(t.queue_head(10).await.unwrap().is_empty());
    assert!(matches!(t.cancel(task.id).await, Err(Error::Conflict(_))));
}

#[tokio::test]
async fn cancel_active_task_asks_its_runner() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;

    let expected = Cancel::Requested { runner_id: Some(r), epoch: task.epoch };
    assert_eq!(t.cancel(task.id).await.unwrap(), expected);
    let row = t.task(task.id).await.unwrap();
    assert!(row.cancel_requested);
    assert_eq!(row.status, "assigned");
    // Asking again is the same request (redelivered until acknowledged).
    assert_eq!(t.cancel(task.id).await.unwrap(), expected);

    // Also while running; the runner's report ends it.
    assert!(t.mark_running(fence(&t, task.id, task.epoch).await, now_ms()).await.unwrap());
    assert_eq!(t.cancel(task.id).await.unwrap(), expected);
    assert!(t.finish(finish(fence(&t, task.id, task.epoch).await, TaskStatus::Cancelled, None)).await.unwrap());
    assert_eq!(t.task(task.id).await.unwrap().status, "cancelled");
}

#[tokio::test]
async fn cancel_finished_task_is_conflict() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    assert!(t.finish(finish(fence(&t, task.id, task.epoch).await, TaskStatus::Succeeded, Some(0))).await.unwrap());
    let done = t.task(task.id).await.unwrap();

    let res = t.cancel(task.id).await;
    assert!(matches!(res, Err(Error::Conflict(_))), "{res:?}");
    assert_eq!(t.task(task.id).await.unwrap(), done, "a refused cancel changes nothing");
    assert!(matches!(t.cancel(9999).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn queue_head_orders_by_priority_then_age() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let mut ids = Vec::new();
    for prio in [0, 5, 0, 9, 5, 0] {
        ids.push(t.create_task(new_task(1, 1, prio, 1)).await.unwrap().id);
    }
    // Take one of priority 9 off the queue and add another, so only queued tasks are listed.
    let extra = t.create_task(new_task(1, 1, 9, 1)).await.unwrap();
    t.claim(extra.id, 0, r).await.unwrap().unwrap();

    let head: Vec<i64> = t.queue_head(100).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(head, vec![ids[3], ids[1], ids[4], ids[0], ids[2], ids[5]]);
    let top: Vec<i64> = t.queue_head(2).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(top, vec![ids[3], ids[1]]);
}

#[tokio::test]
async fn active_counts_count_assigned_and_running() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    // (project, template): A=(1,10) assigned, B=(1,10) running, C=(1,11) assigned,
    // D=(2,20) running, E=(2,20) queued, F=(2,21) succeeded.
    let mk = |p, tpl| t.create_task(new_task(p, tpl, 0, 1));
    let a = mk(1, 10).await.unwrap();
    let b = mk(1, 10).await.unwrap();
    let c = mk(1, 11).await.unwrap();
    let d = mk(2, 20).await.unwrap();
    let _e = mk(2, 20).await.unwrap();
    let f = mk(2, 21).await.unwrap();
    for x in [&a, &b, &c, &d, &f] {
        assert_eq!(t.claim(x.id, 0, r).await.unwrap(), Some(1));
    }
    assert!(t.mark_running(fence(&t, b.id, 1).await, now_ms()).await.unwrap());
    assert!(t.mark_running(fence(&t, d.id, 1).await, now_ms()).await.unwrap());
    assert!(t.finish(finish(fence(&t, f.id, 1).await, TaskStatus::Succeeded, Some(0))).await.unwrap());

    let (per_template, per_project) = t.active_counts().await.unwrap();
    assert_eq!(per_template.len(), 3);
    assert_eq!(per_template.get(&10), Some(&2));
    assert_eq!(per_template.get(&11), Some(&1));
    assert_eq!(per_template.get(&20), Some(&1));
    assert_eq!(per_template.get(&21), None);
    assert_eq!(per_project.len(), 2);
    assert_eq!(per_project.get(&1), Some(&3));
    assert_eq!(per_project.get(&2), Some(&1));
}

#[tokio::test]
async fn expired_leases_find_tasks_of_silent_runners() {
    let db = support::db().await;
    let t = db.dispatcher();
    let old = runner(&t, "old").await;
    let fresh = runner(&t, "fresh").await;
    let never = runner(&t, "never").await;
    let cutoff = now_ms();
    t.runners_seen(&[(old, cutoff - 30)]).await.unwrap();
    t.runners_seen(&[(fresh, cutoff)]).await.unwrap();
    assert!(t.runner(fresh).await.unwrap().last_seen.unwrap() >= cutoff);
    assert!(t.runner(old).await.unwrap().last_seen.unwrap() < cutoff);

    let of_old = assigned_task(&t, old, 1).await;
    let of_fresh = assigned_task(&t, fresh, 1).await;
    let of_never = assigned_task(&t, never, 1).await;
    assert!(t.mark_running(fence(&t, of_never.id, of_never.epoch).await, now_ms()).await.unwrap());
    // Finished and queued tasks have no lease.
    let done = assigned_task(&t, old, 1).await;
    assert!(t.finish(finish(fence(&t, done.id, done.epoch).await, TaskStatus::Succeeded, Some(0))).await.unwrap());
    t.create_task(new_task(1, 1, 0, 1)).await.unwrap();

    let mut expired: Vec<i64> = t.expired_leases(cutoff).await.unwrap().iter().map(|t| t.id).collect();
    expired.sort_unstable();
    assert_eq!(expired, vec![of_old.id, of_never.id]);
    assert!(!expired.contains(&of_fresh.id));

    // Once the old runner is seen again, its task is no longer expired.
    t.runners_seen(&[(old, cutoff + 5)]).await.unwrap();
    let expired: Vec<i64> = t.expired_leases(cutoff).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(expired, vec![of_never.id]);
}

#[tokio::test]
async fn the_leases_of_runners_heard_together_are_renewed_in_one_statement_and_never_go_back() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (a, b, c) = (runner(&t, "a").await, runner(&t, "b").await, runner(&t, "c").await);
    let silent = runner(&t, "silent").await;
    let at = now_ms() - 10_000;
    t.runners_seen(&[(silent, at - 5_000), (c, at + 500)]).await.unwrap();

    let updates = support::statements(&db.store, baton_store::StatementKind::Update);
    t.runners_seen(&[(a, at), (b, at + 100), (c, at + 200)]).await.unwrap();
    assert_eq!(support::statements(&db.store, baton_store::StatementKind::Update) - updates, 1);
    let seen = async |id| t.runner(id).await.unwrap().last_seen;
    assert_eq!(seen(a).await, Some(at), "each runner gets its own time");
    assert_eq!(seen(b).await, Some(at + 100));
    assert_eq!(seen(c).await, Some(at + 500), "an older time leaves a later lease as it is");
    assert_eq!(seen(silent).await, Some(at - 5_000), "a runner not named keeps its lease");

    // A runner never seen before gets its first lease the same way.
    let new = runner(&t, "new").await;
    assert_eq!(seen(new).await, None);
    t.runners_seen(&[(new, at)]).await.unwrap();
    assert_eq!(seen(new).await, Some(at));

    // No runner to renew is no statement at all.
    let updates = support::statements(&db.store, baton_store::StatementKind::Update);
    t.runners_seen(&[]).await.unwrap();
    assert_eq!(support::statements(&db.store, baton_store::StatementKind::Update) - updates, 0);
}

#[tokio::test]
async fn queue_pages_continue_after_their_cursor() {
    let db = support::db().await;
    let t = db.dispatcher();
    let mut made = Vec::new();
    for p in [5, 1, 5, 0, 1, 5, 0] {
        made.push((p, t.create_task(support::new_task(1, 1, p, 1)).await.unwrap().id));
    }
    // Placement order: priority descending, then oldest first.
    made.sort_by_key(|(p, id)| (-p, *id));
    let want: Vec<i64> = made.iter().map(|(_, id)| *id).collect();
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = t.queue_page(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.priority, last.id));
        got.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(got, want);
    assert_eq!(t.queue_head(3).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), want[..3].to_vec());
}

/// Every change of a task bumps its version by one and stamps its time, in the same statement.
#[tokio::test]
async fn every_change_bumps_the_version() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let created = t.create_task(new_task(1, 1, 0, 2)).await.unwrap();
    assert_eq!(created.version, 1);
    let epoch = t.claim(created.id, 0, r).await.unwrap().unwrap();
    let v = |row: baton_store::entity::task::Model| (row.status, row.version);
    assert_eq!(v(t.task(created.id).await.unwrap()), ("assigned".into(), 2));
    assert!(t.mark_running(fence(&t, created.id, epoch).await, now_ms()).await.unwrap());
    assert_eq!(v(t.task(created.id).await.unwrap()), ("running".into(), 3));
    assert!(!t.mark_running(fence(&t, created.id, epoch + 5).await, now_ms()).await.unwrap());
    assert_eq!(t.task(created.id).await.unwrap().version, 3, "a refused change changes nothing");
    assert_eq!(t.lose(created.id, epoch, "gone").await.unwrap(), Lost::Requeued);
    let row = t.task(created.id).await.unwrap();
    assert_eq!(v(row.clone()), ("queued".into(), 4));
    assert!(row.updated_at >= created.updated_at);
    assert!(matches!(t.cancel(created.id).await.unwrap(), Cancel::Cancelled));
    assert_eq!(t.task(created.id).await.unwrap().version, 5);
}
