//! Racing writers on the fenced state machine: whatever the interleaving, exactly one of two
//! compare-and-sets on the same (task, epoch) wins, and the losers are told so cleanly.

use baton_core::TaskStatus;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::dispatcher::tasks::Lost;

use crate::support::{self, assigned_task, fence, runner};

const ROUNDS: usize = 20;

fn succeeded(fence: Fence) -> Finish {
    Finish { fence, status: TaskStatus::Succeeded, exit_code: Some(0), error: None, node_id: None }
}

#[tokio::test]
async fn racing_lose_and_finish_have_exactly_one_winner() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    for _ in 0..ROUNDS {
        let task = assigned_task(&t, r, 2).await;
        let (a, b) = (db.dispatcher(), db.dispatcher());
        let (lost, fin) = tokio::join!(
            a.lose(task.id, task.epoch, "gone"),
            b.finish(succeeded(fence(&b, task.id, task.epoch).await))
        );
        let row = t.task(task.id).await.unwrap();
        let lose_won = matches!(lost, Ok(Lost::Requeued));
        let finish_won = matches!(fin, Ok(true)) && row.status == "succeeded";
        assert!(lose_won ^ finish_won, "{lost:?} {fin:?} -> {row:?}");
        if lose_won {
            assert_eq!((row.status.as_str(), row.epoch, row.attempt), ("queued", task.epoch + 1, 2));
        } else {
            assert_eq!((row.epoch, row.attempt, row.exit_code), (task.epoch, 1, Some(0)));
        }
    }
}

#[tokio::test]
async fn racing_loses_requeue_once() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    for _ in 0..ROUNDS {
        let task = assigned_task(&t, r, 3).await;
        let (a, b) = (db.dispatcher(), db.dispatcher());
        let (x, y) = tokio::join!(a.lose(task.id, task.epoch, "a"), b.lose(task.id, task.epoch, "b"));
        let wins = [&x, &y].iter().filter(|o| matches!(o, Ok(Lost::Requeued))).count();
        assert_eq!(wins, 1, "{x:?} {y:?}");
        let row = t.task(task.id).await.unwrap();
        assert_eq!((row.status.as_str(), row.epoch, row.attempt), ("queued", task.epoch + 1, 2));
    }
}

/// The loser of a race must get `false`/`Stale` (the documented answer to a stale epoch), not a
/// database error. On SQLite, `finish` and `lose` open a deferred transaction, read, then write:
/// the second writer's lock upgrade fails at once with SQLITE_BUSY (code 5) or
/// SQLITE_BUSY_SNAPSHOT (517), the busy timeout does not apply, and the caller gets
/// `Error::Database("... database is locked")`.
#[tokio::test]
async fn racing_lose_and_finish_loser_is_told_stale() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let mut errors = Vec::new();
    for _ in 0..ROUNDS {
        let task = assigned_task(&t, r, 2).await;
        let (a, b) = (db.dispatcher(), db.dispatcher());
        let (lost, fin) = tokio::join!(
            a.lose(task.id, task.epoch, "gone"),
            b.finish(succeeded(fence(&b, task.id, task.epoch).await))
        );
        if lost.is_err() || fin.is_err() {
            errors.push(format!("lose: {lost:?}, finish: {fin:?}"));
        }
    }
    assert!(errors.is_empty(), "{} of {ROUNDS} races ended in an error: {errors:#?}", errors.len());
}

/// Two runners finishing two *different* tasks at the same moment must both be recorded. On
/// SQLite one of them fails with "database is locked" most of the time (same cause as above).
#[tokio::test]
async fn concurrent_finishes_of_different_tasks_all_succeed() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let mut errors = Vec::new();
    for _ in 0..ROUNDS {
        let x = assigned_task(&t, r, 1).await;
        let y = assigned_task(&t, r, 1).await;
        let (a, b) = (db.dispatcher(), db.dispatcher());
        let (rx, ry) = tokio::join!(
            a.finish(succeeded(fence(&a, x.id, x.epoch).await)),
            b.finish(succeeded(fence(&b, y.id, y.epoch).await))
        );
        if !(matches!(rx, Ok(true)) && matches!(ry, Ok(true))) {
            errors.push(format!("{rx:?} {ry:?}"));
        }
    }
    assert!(errors.is_empty(), "{} of {ROUNDS} pairs failed: {errors:#?}", errors.len());
}
