//! Where a task's output goes once it is masked and cut into lines: first the log cap
//! (`max_log_bytes`: once that much text is kept, later lines are counted and dropped, so the
//! script never blocks on them), then a reservation of held bytes (which may wait: that is the
//! backpressure), then the job's event channel.

use std::sync::Mutex;

use baton_proto::v1::Stream;
use tokio::sync::mpsc;

use crate::exec::Event;
use crate::held::TaskPool;

/// A task's output.
#[derive(Debug)]
pub struct Sink {
    events: mpsc::UnboundedSender<Event>,
    pool: TaskPool,
    cap: Mutex<Cap>,
}

#[derive(Debug)]
struct Cap {
    max: u64,
    kept: u64,
    dropped_bytes: u64,
    dropped_lines: u64,
}

impl Sink {
    pub fn new(events: mpsc::UnboundedSender<Event>, pool: TaskPool, max_log_bytes: u64) -> Sink {
        let cap = Cap { max: max_log_bytes, kept: 0, dropped_bytes: 0, dropped_lines: 0 };
        Sink { events, pool, cap: Mutex::new(cap) }
    }

    /// Reports what the script does (start, end).
    pub fn event(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    /// A line of the script's output: kept while the log is under its cap, once the runner may
    /// hold it (which may wait).
    pub async fn line(&self, stream: Stream, text: String) {
        if !self.keep(text.len()) {
            return;
        }
        // `None`: the job is gone, and its output with it.
        if let Some(held) = self.pool.reserve(text.len()).await {
            self.event(Event::Line { stream, text, held: Some(held) });
        }
    }

    /// A line of the runner's own: always kept, and not held against the bounds (a task has
    /// at most two).
    pub fn system(&self, text: String) {
        self.event(Event::Line { stream: Stream::System, text, held: None });
    }

    /// Whether a line of `len` bytes fits under the cap. Once one does not, no later line is
    /// kept either, so the log is exactly its beginning.
    fn keep(&self, len: usize) -> bool {
        let mut cap = self.cap.lock().unwrap_or_else(|e| e.into_inner());
        let len = len as u64;
        if cap.dropped_lines == 0 && cap.kept + len <= cap.max {
            cap.kept += len;
            return true;
        }
        cap.dropped_bytes += len;
        cap.dropped_lines += 1;
        false
    }

    /// The line that ends a truncated log, if it was truncated.
    pub fn truncation(&self) -> Option<String> {
        let cap = self.cap.lock().unwrap_or_else(|e| e.into_inner());
        (cap.dropped_lines > 0).then(|| {
            format!(
                "log truncated: {} bytes in {} lines dropped after the first {} (runner.max_log_bytes)",
                cap.dropped_bytes,
                cap.dropped_lines,
                size(cap.max)
            )
        })
    }
}

/// `n` bytes in the largest binary unit that divides it evenly.
fn size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::held::{HoldLimits, Pool};

    fn sink(max: u64) -> (Sink, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Sink::new(tx, Pool::new(HoldLimits::default()).task(), max), rx)
    }

    fn texts(rx: &mut mpsc::UnboundedReceiver<Event>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|e| match e {
                Event::Line { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn the_cap_keeps_the_beginning_and_counts_the_rest() {
        let (s, mut rx) = sink(10);
        for t in ["1234", "5678", "abc", "de", "f"] {
            s.line(Stream::Stdout, t.into()).await;
        }
        assert_eq!(texts(&mut rx), ["1234", "5678"], "a line that does not fit ends the kept part");
        assert_eq!(
            s.truncation().as_deref(),
            Some("log truncated: 6 bytes in 3 lines dropped after the first 10 bytes (runner.max_log_bytes)")
        );
        s.system("end".into());
        assert_eq!(texts(&mut rx), ["end"], "the runner's own lines are not capped");

        let (s, _rx) = sink(10);
        s.line(Stream::Stdout, "0123456789".into()).await;
        assert_eq!(s.truncation(), None, "exactly the cap is not truncated");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(1536), "1536 bytes");
        assert_eq!(size(3 << 10), "3 KiB");
        assert_eq!(size(5 << 30), "5 GiB");
        assert_eq!(size(100), "100 bytes");
    }
}
