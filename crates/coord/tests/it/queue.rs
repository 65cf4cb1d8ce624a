//! The ready queue: placement order, idempotence, paging, and the wake-ups of `wait_for_work`.

use std::time::{Duration, Instant};

use baton_coord::{MAX_PRIORITY, Queued};

use crate::{Backend, within};

both!(
    placement_order_is_priority_then_fifo,
    enqueue_is_idempotent,
    dequeue_removes_tasks_and_ignores_absent_ones,
    concurrent_dequeues_hand_each_task_to_one_caller,
    pages_continue_after_the_given_entry,
    priorities_are_clamped,
    large_batches_are_queued,
    wait_for_work_wakes_on_an_enqueue_from_another_node,
    wait_for_work_times_out_without_a_new_task,
);

fn q(task_id: i64, priority: i32) -> Queued {
    Queued { task_id, priority }
}

async fn placement_order_is_priority_then_fifo(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    one.enqueue(&[q(5, 0), q(3, 0), q(9, 10), q(1, -4), q(4, 10)]).await.unwrap();
    two.enqueue(&[q(2, 0)]).await.unwrap();
    let expected = vec![q(4, 10), q(9, 10), q(2, 0), q(3, 0), q(5, 0), q(1, -4)];
    assert_eq!(two.queue_page(None, 100).await.unwrap(), expected);
    assert_eq!(one.queue_page(None, 100).await.unwrap(), expected);
    assert_eq!(one.queue_len().await.unwrap(), 6);
    assert_eq!(one.queue_page(None, 2).await.unwrap(), expected[..2]);
    assert!(one.queue_page(None, 0).await.unwrap().is_empty());
}

async fn enqueue_is_idempotent(b: Backend) {
    let c = b.node().await;
    c.enqueue(&[q(1, 0), q(2, 5)]).await.unwrap();
    // A present task keeps its place, even when enqueued with another priority.
    c.enqueue(&[q(1, 0), q(2, 0), q(1, 7)]).await.unwrap();
    c.enqueue(&[]).await.unwrap();
    assert_eq!(c.queue_page(None, 10).await.unwrap(), vec![q(2, 5), q(1, 0)]);
    assert_eq!(c.queue_len().await.unwrap(), 2);
}

async fn dequeue_removes_tasks_and_ignores_absent_ones(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    one.enqueue(&[q(1, 0), q(2, 0), q(3, 1)]).await.unwrap();
    assert_eq!(two.dequeue(&[3, 42, 1]).await.unwrap(), [3, 1], "the present ones, in the order given");
    assert!(two.dequeue(&[]).await.unwrap().is_empty());
    assert!(one.dequeue(&[3, 1]).await.unwrap().is_empty(), "already gone");
    assert_eq!(one.queue_page(None, 10).await.unwrap(), vec![q(2, 0)]);
    two.dequeue(&[2]).await.unwrap();
    assert_eq!(one.queue_len().await.unwrap(), 0);
    assert!(one.queue_page(None, 10).await.unwrap().is_empty());
    // A dequeued task may come back.
    one.enqueue(&[q(1, 3)]).await.unwrap();
    assert_eq!(one.queue_page(None, 10).await.unwrap(), vec![q(1, 3)]);
}

/// What placement relies on to stop nodes racing for the same tasks in SQL: when several callers
/// dequeue overlapping tasks at once, each task goes to exactly one of them.
async fn concurrent_dequeues_hand_each_task_to_one_caller(b: Backend) {
    let nodes = [b.node().await, b.node().await, b.node().await];
    let all: Vec<i64> = (1..=300).collect();
    nodes[0].enqueue(&all.iter().map(|&id| q(id, 0)).collect::<Vec<_>>()).await.unwrap();
    let takes = nodes.iter().enumerate().map(|(i, c)| {
        // Each asks for every task, from a different starting point, in small batches.
        let mut mine = all.clone();
        mine.rotate_left(i * 100);
        async move {
            let mut got = Vec::new();
            for batch in mine.chunks(7) {
                got.extend(c.dequeue(batch).await.unwrap());
            }
            got
        }
    });
    let got: Vec<Vec<i64>> = futures::future::join_all(takes).await;
    let mut every: Vec<i64> = got.concat();
    every.sort_unstable();
    assert_eq!(every, all, "every task went to exactly one caller");
    assert_eq!(nodes[1].queue_len().await.unwrap(), 0);
}

async fn pages_continue_after_the_given_entry(b: Backend) {
    let c = b.node().await;
    let all = [q(10, 2), q(11, 2), q(3, 1), q(4, 1), q(1, 0), q(2, 0), q(7, -1)];
    c.enqueue(&all).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = c.queue_page(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        seen.extend(page);
    }
    assert_eq!(seen, all);
    // The entry paged after may be gone meanwhile: the page starts at its place anyway.
    c.dequeue(&[4]).await.unwrap();
    assert_eq!(c.queue_page(Some(q(4, 1)), 2).await.unwrap(), vec![q(1, 0), q(2, 0)]);
    // An entry that was never queued works as a position too.
    assert_eq!(c.queue_page(Some(q(0, 1)), 1).await.unwrap(), vec![q(3, 1)]);
    assert!(c.queue_page(Some(q(7, -1)), 5).await.unwrap().is_empty());
}

async fn priorities_are_clamped(b: Backend) {
    let c = b.node().await;
    c.enqueue(&[q(1, i32::MIN), q(2, 5000), q(3, MAX_PRIORITY), q(4, -MAX_PRIORITY)]).await.unwrap();
    assert_eq!(
        c.queue_page(None, 10).await.unwrap(),
        vec![q(2, MAX_PRIORITY), q(3, MAX_PRIORITY), q(1, -MAX_PRIORITY), q(4, -MAX_PRIORITY)]
    );
}

async fn large_batches_are_queued(b: Backend) {
    let c = b.node().await;
    let tasks: Vec<Queued> = (1..=2500).rev().map(|id| q(id, (id % 3) as i32)).collect();
    c.enqueue(&tasks).await.unwrap();
    assert_eq!(c.queue_len().await.unwrap(), 2500);
    let head = c.queue_page(None, 3).await.unwrap();
    assert_eq!(head, vec![q(2, 2), q(5, 2), q(8, 2)]);
    let ids: Vec<i64> = (1..=2500).collect();
    c.dequeue(&ids).await.unwrap();
    assert_eq!(c.queue_len().await.unwrap(), 0);
}

async fn wait_for_work_wakes_on_an_enqueue_from_another_node(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    for id in 1..=3 {
        let waiter = tokio::spawn({
            let one = one.clone();
            async move { one.wait_for_work(Duration::from_secs(20)).await }
        });
        // Let the wait begin before the enqueue.
        tokio::time::sleep(Duration::from_millis(200)).await;
        two.enqueue(&[q(id, 0)]).await.unwrap();
        assert!(within(5, waiter).await.unwrap().unwrap(), "woken by the enqueue");
    }
}

async fn wait_for_work_times_out_without_a_new_task(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    // A first wait consumes the wake-up of this enqueue, so it cannot reach the wait below late.
    let first = tokio::spawn({
        let one = one.clone();
        async move { one.wait_for_work(Duration::from_secs(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    two.enqueue(&[q(1, 0)]).await.unwrap();
    assert!(within(5, first).await.unwrap().unwrap());
    let waiter = tokio::spawn({
        let one = one.clone();
        async move {
            let started = Instant::now();
            (one.wait_for_work(Duration::from_millis(600)).await, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Neither a present task nor a dequeue is new work.
    two.enqueue(&[q(1, 5)]).await.unwrap();
    two.dequeue(&[1]).await.unwrap();
    let (woken, waited) = within(5, waiter).await.unwrap();
    assert!(!woken.unwrap());
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
}
