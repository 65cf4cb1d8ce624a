//! The mark a runner leaves when it stops holding nothing: every assignment it received was run
//! and its end acknowledged. The next process of the same runner on the same work directory then
//! says `Hello.resumed`, so an assignment that was on its way when the old process stopped
//! reading goes back to the queue instead of being declared lost. A process that crashed leaves
//! no mark: its successor cannot know what it started.

use std::path::{Path, PathBuf};

fn path(work_dir: &Path) -> PathBuf {
    work_dir.join(".clean-exit")
}

/// Leaves the mark for `runner_id`.
pub fn mark(work_dir: &Path, runner_id: i64) {
    if let Err(e) = std::fs::write(path(work_dir), runner_id.to_string()) {
        tracing::warn!(error = %e, "cannot leave the clean-exit mark; the next start treats the last one as a crash");
    }
}

/// Whether the last process of `runner_id` left the mark; the mark is used up either way.
pub fn take(work_dir: &Path, runner_id: i64) -> bool {
    let found = std::fs::read_to_string(path(work_dir)).ok().and_then(|s| s.trim().parse::<i64>().ok());
    let _ = std::fs::remove_file(path(work_dir));
    found == Some(runner_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_for_one_runner_and_one_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!take(dir.path(), 7), "no mark after a crash");
        mark(dir.path(), 7);
        assert!(!take(dir.path(), 8), "another runner's mark does not count");
        mark(dir.path(), 7);
        assert!(take(dir.path(), 7));
        assert!(!take(dir.path(), 7), "used up");
    }
}
