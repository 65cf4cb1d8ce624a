//! A script's pipe read into masked log lines. A line longer than [`MAX_LINE`] is sent in pieces,
//! so one runaway line cannot exhaust memory, and pieces are cut so that no secret value is ever
//! sent unmasked: the buffer is masked as a whole, a cut falls only where no value occurs across
//! it, and bytes at the end that may still grow into a value stay behind until more is read.
//! When no such cut exists (a value longer than a line, a line made of overlapping values), the
//! whole buffer goes out with its open end masked, and those bytes are kept for matching only:
//! a value that began in them is then masked in the next piece too. The buffer stays below
//! `MAX_LINE` plus the longest value.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::mask::{Masker, render};
use crate::sink::Sink;

/// Longest piece of a line sent at once.
pub const MAX_LINE: usize = 16 * 1024;

/// Once the script is over, a pipe that stays silent this long is held open by a process that
/// left the script's group: reading stops.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// Once the script is over, at most this much more is read from a pipe: a pipe holds at most
/// `/proc/sys/fs/pipe-max-size` (1 MiB by default), so anything beyond was written by a process
/// that left the script's group.
const DRAIN_MAX: usize = 1 << 20;

/// Cuts a stream of bytes into masked lines and pieces of lines.
pub struct Splitter {
    masker: Arc<Masker>,
    /// The current line's bytes: `buf[..sent]` were already sent (masked) and stay only so
    /// that a value that began in them is recognised; `buf[sent..]` are not sent yet.
    buf: Vec<u8>,
    sent: usize,
    /// Some piece of the current line was sent.
    cut_before: bool,
}

impl Splitter {
    pub fn new(masker: Arc<Masker>) -> Splitter {
        Splitter { masker, buf: Vec::with_capacity(256), sent: 0, cut_before: false }
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Takes `bytes` in and appends to `out` every line or piece that is complete.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<String>) {
        while !bytes.is_empty() {
            let room = MAX_LINE.saturating_sub(self.pending()).max(1);
            let window = &bytes[..bytes.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    self.buf.extend_from_slice(&window[..i]);
                    bytes = &bytes[i + 1..];
                    out.extend(self.end_line());
                }
                None => {
                    self.buf.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.pending() >= MAX_LINE {
                        out.push(self.cut());
                    }
                }
            }
        }
    }

    /// The input ended: the last line, if it has anything left.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending() == 0 { None } else { self.end_line() }
    }

    /// The current line ended: what is left of it.
    fn end_line(&mut self) -> Option<String> {
        if self.pending() > 0 && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        // A line cut right before its end leaves nothing: that is no extra empty line.
        let piece = (self.pending() > 0 || !self.cut_before).then(|| {
            let found = self.masker.matches(&self.buf);
            render(&self.buf, self.sent..self.buf.len(), &found, self.buf.len())
        });
        self.buf.clear();
        self.sent = 0;
        self.cut_before = false;
        piece
    }

    /// The current line is too long: sends a piece of it.
    fn cut(&mut self) -> String {
        let found = self.masker.matches(&self.buf);
        let open = self.masker.open_from(&self.buf);
        let at = clean_cut(&self.buf, &found, open);
        self.cut_before = true;
        if at >= self.sent + MAX_LINE / 2 {
            let piece = render(&self.buf, self.sent..at, &found, self.buf.len());
            self.buf.drain(..at);
            self.sent = 0;
            return piece;
        }
        // No cut worth making: everything goes, with the bytes that may begin a value masked,
        // and those stay for matching only.
        let piece = render(&self.buf, self.sent..self.buf.len(), &found, open);
        self.buf.drain(..open);
        self.sent = self.buf.len();
        piece
    }
}

/// The last position at or before `open` that is inside no value and no UTF-8 character.
fn clean_cut(buf: &[u8], found: &[Range<usize>], open: usize) -> usize {
    let mut at = open;
    loop {
        let before = at;
        if let Some(r) = found.iter().find(|r| r.start < at && at < r.end) {
            at = r.start;
        }
        while at > 0 && at < buf.len() && (buf[at] & 0xC0) == 0x80 {
            at -= 1;
        }
        if at == before {
            return at;
        }
    }
}

/// One pipe of a script and where its lines go.
pub struct Pipe {
    pub stream: Stream,
    pub masker: Arc<Masker>,
    pub sink: Arc<Sink>,
    /// Fires when the script and its process group are gone.
    pub ended: CancellationToken,
}

impl Pipe {
    /// Reads `r` to its end, handing every line to the sink. The sink may make this wait (the
    /// runner holds as much output as it may): the pipe is not read meanwhile, so the script
    /// blocks on its writes.
    pub async fn read(self, mut r: impl AsyncRead + Unpin) {
        let mut split = Splitter::new(self.masker.clone());
        let mut chunk = vec![0u8; 8 * 1024];
        let mut out = Vec::new();
        let mut after_end = 0;
        loop {
            let n = tokio::select! {
                biased;
                n = r.read(&mut chunk) => n.unwrap_or(0),
                _ = async { self.ended.cancelled().await; tokio::time::sleep(DRAIN_IDLE).await } => 0,
            };
            if n == 0 {
                break;
            }
            split.push(&chunk[..n], &mut out);
            for text in out.drain(..) {
                self.sink.line(self.stream, text).await;
            }
            if self.ended.is_cancelled() {
                after_end += n;
                if after_end > DRAIN_MAX {
                    break;
                }
            }
        }
        if let Some(text) = split.finish() {
            self.sink.line(self.stream, text).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;
    use tokio::sync::mpsc;

    use super::*;
    use crate::exec::Event;
    use crate::held::{HoldLimits, Pool};
    use crate::mask::MASK;

    /// Input that arrives in the given pieces, one per read (split further if a read asks for
    /// less), like a pipe written to in bursts.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(mut p) = self.0.pop_front() {
                let n = p.len().min(buf.remaining());
                buf.put_slice(&p[..n]);
                if n < p.len() {
                    self.0.push_front(p.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// What the reader sends for `pieces` of input, with `values` secret.
    async fn read(values: &[&str], pieces: Vec<Vec<u8>>) -> Vec<String> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = Arc::new(Sink::new(tx, Pool::new(HoldLimits::default()).task(), crate::DEFAULT_MAX_LOG_BYTES));
        let pipe =
            Pipe { stream: Stream::Stdout, masker: Arc::new(Masker::new(&values)), sink, ended: Default::default() };
        let reader = tokio::spawn(pipe.read(Pieces(pieces.into())));
        let mut out = Vec::new();
        // Taking the lines as they come gives their reservations back, as acknowledgements do.
        while let Some(ev) = rx.recv().await {
            if let Event::Line { text, .. } = ev {
                out.push(text);
            }
        }
        reader.await.unwrap();
        out
    }

    async fn read_str(values: &[&str], input: &str) -> Vec<String> {
        read(values, vec![input.as_bytes().to_vec()]).await
    }

    #[tokio::test]
    async fn lines_are_split_at_newlines_and_masked() {
        let out = read(&["hunter22"], vec![b"one\r\npw=hun".to_vec(), b"ter22\n\nlast".to_vec()]).await;
        assert_eq!(out, ["one", "pw=********", "", "last"]);
    }

    #[tokio::test]
    async fn long_lines_without_values_are_cut_without_loss() {
        let line = "0123456789".repeat(5000);
        let out = read_str(&[], &format!("{line}\nnext\n")).await;
        assert!(out.iter().all(|p| p.len() <= MAX_LINE), "{:?}", out.iter().map(String::len).collect::<Vec<_>>());
        assert_eq!(out[..out.len() - 1].concat(), line);
        assert_eq!(out.last().map(String::as_str), Some("next"));
        let exact = "x".repeat(MAX_LINE);
        assert_eq!(read_str(&[], &format!("{exact}\r\nafter\n")).await, [exact.as_str(), "after"], "no empty piece");
    }

    #[tokio::test]
    async fn a_value_across_the_cut_moves_the_cut() {
        let value = "s3cr3t-Value-123";
        let head = "x".repeat(MAX_LINE - 5);
        let out = read_str(&[value], &format!("{head}{value} tail\n")).await;
        assert_eq!(out, [head.as_str(), "******** tail"]);
    }

    #[tokio::test]
    async fn a_value_longer_than_a_line_is_masked_inside_a_longer_line() {
        let value: String = (0..MAX_LINE + 3000).map(|i| char::from(b'A' + (i % 26) as u8)).collect();
        let input = format!("{}{value}{}\n", "x".repeat(100), "y".repeat(30_000));
        let out = read_str(&[&value], &input).await;
        let all = out.concat();
        assert_eq!(all.replace(MASK, ""), format!("{}{}", "x".repeat(100), "y".repeat(30_000)), "only the value goes");
        assert!(out.iter().all(|p| !p.contains("ABCDEFGH")), "no piece shows part of the value");
    }

    #[tokio::test]
    async fn moving_the_cut_for_one_value_never_splits_another() {
        // Cutting before "KLMNOPQR" (across the limit), then before "IJKL" (across that cut),
        // puts the cut inside "ABCDEFGHI", which was checked first: one value at a time, each
        // piece shows half of it.
        let (l, s, m) = ("ABCDEFGHI", "IJKL", "KLMNOPQR");
        let head = "x".repeat(MAX_LINE - 12);
        let out = read_str(&[l, s, m], &format!("{head}ABCDEFGHIJKLMNOPQR end\n")).await;
        assert_eq!(out, [head.as_str(), "******** end"]);
    }

    #[tokio::test]
    async fn a_line_of_overlapping_values_is_masked_in_bounded_pieces() {
        let out = read_str(&["abab"], &format!("{}\n", "ab".repeat(50_000))).await;
        assert!(out.len() > 1 && out.iter().all(|p| p.chars().all(|c| c == '*') && p.len() <= MAX_LINE), "{out:?}");

        let masker = Arc::new(Masker::new(&["abab".to_string()]));
        let mut split = Splitter::new(masker);
        let mut sent = Vec::new();
        for _ in 0..10_000 {
            split.push(b"ab", &mut sent);
            assert!(split.buf.len() <= MAX_LINE + 4, "the buffer grows: {}", split.buf.len());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_end_a_reader_waits_for_room_but_not_for_a_silent_pipe() {
        use tokio::io::AsyncWriteExt;
        let pipe = |sink, ended: &CancellationToken| Pipe {
            stream: Stream::Stdout,
            masker: Arc::new(Masker::default()),
            sink: Arc::new(sink),
            ended: ended.clone(),
        };
        let texts = |rx: &mut mpsc::UnboundedReceiver<Event>| -> Vec<String> {
            std::iter::from_fn(|| rx.try_recv().ok())
                .filter_map(|e| if let Event::Line { text, .. } = e { Some(text) } else { None })
                .collect()
        };
        // A process that left the script's group holds the pipe open: once silent, it is let go.
        let (mut w, r) = tokio::io::duplex(1024);
        w.write_all(b"before\n").await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ended = CancellationToken::new();
        let big = Pool::new(HoldLimits::default());
        let reader = tokio::spawn(pipe(Sink::new(tx, big.task(), crate::DEFAULT_MAX_LOG_BYTES), &ended).read(r));
        ended.cancel();
        tokio::time::timeout(Duration::from_secs(10), reader).await.expect("reading stops").unwrap();
        assert_eq!(texts(&mut rx), ["before"]);
        drop(w);

        // Output the script wrote before it ended waits for room as long as it takes.
        let input: String = (0..50).map(|i| format!("{i:099}\n")).collect();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let small = Pool::new(HoldLimits { per_task: 1000, per_runner: 1000 });
        let sink = Sink::new(tx, small.task(), crate::DEFAULT_MAX_LOG_BYTES);
        let reader = tokio::spawn(pipe(sink, &ended).read(std::io::Cursor::new(input.into_bytes())));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(small.held() > 0 && !reader.is_finished(), "the reader waits for room");
        let mut got = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let Event::Line { text, .. } = ev {
                got.push(text);
            }
        }
        assert_eq!(got.len(), 50, "every line the script wrote is kept");
    }

    /// A small deterministic generator (xorshift64*), so a failure can be replayed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
        }
    }

    /// A random line of values, parts of values and filler, in brackets (never part of a value).
    fn random_line(rng: &mut Rng, sources: &[String]) -> String {
        let target = if rng.below(10) == 0 { 10_000 + rng.below(50_000) } else { rng.below(300) };
        let mut line = String::from("[");
        while line.len() < target {
            let v = &sources[rng.below(sources.len())];
            let (a, b) = match rng.below(4) {
                0 => (0, v.len()),
                1 => (0, rng.below(v.len())),
                2 => (rng.below(v.len()), v.len()),
                _ => {
                    let filler = "abcdIJKLMN-s3 x";
                    let n = rng.below(40);
                    line.extend((0..n).map(|_| char::from(filler.as_bytes()[rng.below(filler.len())])));
                    continue;
                }
            };
            line.push_str(&v[a..b]);
        }
        line.push(']');
        line
    }

    #[tokio::test]
    async fn random_lines_in_random_pieces_never_show_a_value() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Longer than a line, of letters no other value has, so nothing else masks part of it.
        let long: String = (0..MAX_LINE + 4000).map(|_| char::from(b'e' + rng.below(4) as u8)).collect();
        let values: Vec<String> = ["abab", "s3cr3t-Value-123", "ABCDEFGHI", "IJKL", "KLMNOPQR", "aaaaaaa", "dcba-x"]
            .into_iter()
            .map(String::from)
            .chain([long])
            .collect();
        // Values overlapping each other, where one cut leads to the next.
        let sources: Vec<String> =
            values.iter().cloned().chain(["ABCDEFGHIJKLMNOPQR".into(), "ab".repeat(9)]).collect();
        let lines: Vec<String> = (0..3000).map(|_| random_line(&mut rng, &sources)).collect();
        let input = lines.join("\n").into_bytes();
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let n = 1 + if rng.below(2) == 0 { rng.below(100) } else { rng.below(65_536) };
            pieces.push(input[at..input.len().min(at + n)].to_vec());
            at += n;
        }
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let out = read(&refs, pieces).await;
        // All pieces joined: a value across any number of pieces would show here.
        let all = out.concat();
        for v in &values {
            assert!(!all.contains(v.as_str()), "{} leaked", &v[..v.len().min(20)]);
        }
        assert_eq!(all.matches('[').count(), lines.len(), "text that is no value is kept");
        assert!(out.iter().all(|p| p.len() <= 2 * MAX_LINE + 16));
    }
}
