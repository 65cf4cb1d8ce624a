//! Which runner messages that arrived together may be handled in phases — every `started`
//! report first (one statement), then logs, heartbeats and the rest in order, then every
//! `finished` report (one transaction). Reports of different tasks are independent; a task's
//! own reports must keep their order, so a batch is handled in phases only when that order is
//! already started → logs → finished for each task, each report at most once.

use std::collections::HashMap;

use baton_proto::v1::runner_message::Msg;

/// Whether handling `batch` in phases keeps each task's reports in the order they were sent.
pub fn in_phases(batch: &[Msg]) -> bool {
    // The phase each task has reached, by (task, epoch).
    let mut reached: HashMap<(i64, i64), u8> = HashMap::new();
    for m in batch {
        let (task, phase) = match m {
            Msg::Started(s) => (s.task, 0),
            Msg::Log(l) => (l.task, 1),
            Msg::Finished(f) => (f.task, 2),
            Msg::Heartbeat(_) | Msg::Draining(_) | Msg::Hello(_) => continue,
        };
        let Some(t) = task else { continue };
        match reached.insert((t.task_id, t.epoch), phase) {
            // A report repeated within the batch, or one that phases would move ahead of an
            // earlier one of its task.
            Some(before) if before > phase || (before == phase && phase != 1) => return false,
            _ => {}
        }
    }
    // Two attempts of one task in one batch: their order across epochs matters too.
    let mut tasks: HashMap<i64, i64> = HashMap::new();
    reached.keys().all(|(task, epoch)| *tasks.entry(*task).or_insert(*epoch) == *epoch)
}

#[cfg(test)]
mod tests {
    use baton_proto::v1::{LogChunk, TaskFinished, TaskRef, TaskStarted};

    use super::*;

    fn started(id: i64) -> Msg {
        Msg::Started(TaskStarted { task: Some(TaskRef { task_id: id, epoch: 1 }), ..Default::default() })
    }
    fn log(id: i64) -> Msg {
        Msg::Log(LogChunk { task: Some(TaskRef { task_id: id, epoch: 1 }), ..Default::default() })
    }
    fn finished(id: i64, epoch: i64) -> Msg {
        Msg::Finished(TaskFinished { task: Some(TaskRef { task_id: id, epoch }), ..Default::default() })
    }

    #[test]
    fn each_tasks_own_order_decides() {
        // Interleaved tasks, each in order: phases keep it.
        assert!(in_phases(&[started(1), finished(2, 1), log(1), started(3), log(1), finished(1, 1), finished(3, 1)]));
        // A task that ends before another report of it: phases would reorder them.
        assert!(!in_phases(&[finished(1, 1), started(1)]));
        assert!(!in_phases(&[log(1), started(1)]));
        assert!(!in_phases(&[finished(1, 1), log(1)]));
        // The same report twice (a re-send) goes one by one, as the store answers repeats.
        assert!(!in_phases(&[finished(1, 1), finished(1, 1)]));
        assert!(!in_phases(&[started(1), started(1)]));
        // Two attempts of one task.
        assert!(!in_phases(&[finished(1, 1), finished(1, 2)]));
    }
}
