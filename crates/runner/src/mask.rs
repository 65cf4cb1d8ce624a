//! Masking secret values in log output. Every occurrence of every value is found, overlapping
//! ones included, and each stretch of text covered by occurrences becomes one [`MASK`], so no
//! order of replacement can leave part of a value behind. Each line of a multi-line value is
//! masked on its own, because scripts print values line by line. Values shorter than [`MIN_LEN`]
//! are not masked: masking "1" or "yes" would destroy the log without protecting anything.
//! Over-long lines are split by `lines.rs`, which uses [`Masker::matches`] and
//! [`Masker::open_from`] to cut only where no value is split.

use std::borrow::Cow;
use std::ops::Range;

use memchr::memmem::Finder;

pub const MASK: &str = "********";
pub const MIN_LEN: usize = 4;

/// One value to mask, with what searching for it needs.
struct Needle {
    finder: Finder<'static>,
    /// The prefix function of the value: `fail[i]` is the length of the longest proper prefix
    /// of `value[..=i]` that is also its suffix. It finds where a value may begin at the end of
    /// a buffer in time linear in the value's length.
    fail: Vec<usize>,
}

impl Needle {
    fn new(value: &str) -> Needle {
        let v = value.as_bytes();
        let mut fail = vec![0; v.len()];
        let mut k = 0;
        for i in 1..v.len() {
            while k > 0 && v[i] != v[k] {
                k = fail[k - 1];
            }
            if v[i] == v[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Needle { finder: Finder::new(v).into_owned(), fail }
    }

    fn value(&self) -> &[u8] {
        self.finder.needle()
    }

    /// The length of the longest suffix of `buf` that is a proper prefix of the value.
    fn open_len(&self, buf: &[u8]) -> usize {
        let v = self.value();
        let tail = &buf[buf.len().saturating_sub(v.len() - 1)..];
        let mut k = 0;
        for &b in tail {
            while k > 0 && (k == v.len() || v[k] != b) {
                k = self.fail[k - 1];
            }
            if v[k] == b {
                k += 1;
            }
        }
        if k == v.len() { self.fail[k - 1] } else { k }
    }
}

#[derive(Default)]
pub struct Masker {
    needles: Vec<Needle>,
}

/// Never shows the values.
impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").field("values", &self.needles.len()).finish()
    }
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a String>) -> Masker {
        let mut lines: Vec<&str> = values
            .into_iter()
            .flat_map(|v| v.lines())
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| l.len() >= MIN_LEN)
            .collect();
        lines.sort_unstable();
        lines.dedup();
        Masker { needles: lines.into_iter().map(Needle::new).collect() }
    }

    /// `text` with every value masked.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let found = self.matches(text.as_bytes());
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(render(text.as_bytes(), 0..text.len(), &found, text.len()))
    }

    /// Where values occur in `buf`: sorted, overlapping occurrences merged into one range, and
    /// ranges that only touch kept apart (each becomes its own mask).
    pub fn matches(&self, buf: &[u8]) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        for n in &self.needles {
            let mut from = 0;
            while let Some(i) = n.finder.find(&buf[from..]) {
                found.push(from + i..from + i + n.value().len());
                from += i + 1;
            }
        }
        found.sort_unstable_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for r in found {
            match merged.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// Where the longest suffix of `buf` that is a proper prefix of some value starts (the
    /// buffer's length if there is none): from there on the bytes may still turn out to be a
    /// value once more of the line is read.
    pub fn open_from(&self, buf: &[u8]) -> usize {
        buf.len() - self.needles.iter().map(|n| n.open_len(buf)).max().unwrap_or(0)
    }
}

/// The bytes of `buf` in `range` as text, each run of bytes covered by `found` or at or after
/// `masked_from` replaced by one [`MASK`]. Bytes that are not UTF-8 become U+FFFD.
pub fn render(buf: &[u8], range: Range<usize>, found: &[Range<usize>], masked_from: usize) -> String {
    let mut out = Vec::with_capacity(range.len());
    let mut at = range.start;
    let mut ranges = found.iter().filter(|r| r.end > range.start).peekable();
    while at < range.end {
        if at >= masked_from {
            out.extend_from_slice(MASK.as_bytes());
            break;
        }
        match ranges.peek() {
            Some(r) if r.start <= at => {
                // A value running into the masked end is one stretch with it.
                at = if r.end > masked_from { range.end } else { r.end.min(range.end) };
                out.extend_from_slice(MASK.as_bytes());
                ranges.next();
            }
            next => {
                let stop = next.map_or(range.end, |r| r.start).min(masked_from).min(range.end);
                out.extend_from_slice(&buf[at..stop]);
                at = stop;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let owned: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        Masker::new(&owned)
    }

    #[test]
    fn masks_every_occurrence_and_every_line_of_a_value() {
        let m = masker(&["hunter22", "line-one\nline-two", "abc"]);
        assert_eq!(m.mask("pw=hunter22 again hunter22"), "pw=******** again ********");
        assert_eq!(m.mask("line-two then line-one"), "******** then ********");
        assert_eq!(m.mask("abc is too short to mask"), "abc is too short to mask");
        assert_eq!(m.mask("hunter22hunter22"), "****************", "touching values are two masks");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn longer_values_win_over_values_they_contain() {
        let m = masker(&["secret", "secret-and-more"]);
        assert_eq!(m.mask("x secret-and-more y secret"), "x ******** y ********");
    }

    #[test]
    fn overlapping_values_are_masked_as_one_stretch() {
        // Replacing "abcd" first would leave "ef" of the other value, and the other way round.
        let m = masker(&["abcd", "cdef"]);
        assert_eq!(m.mask("x abcdef y"), "x ******** y");
        let m = masker(&["abab"]);
        assert_eq!(m.mask("abababab!"), "********!", "overlapping occurrences of one value");
    }

    #[test]
    fn open_from_finds_where_a_value_may_begin_at_the_end() {
        let m = masker(&["TOPSECRET", "aaab"]);
        assert_eq!(m.open_from(b"xxTOPSE"), 2);
        assert_eq!(m.open_from(b"xxTOPSECRETx"), 12, "a whole value is not open");
        assert_eq!(m.open_from(b"xxTOPSECRET"), 10, "but its last T may begin another");
        assert_eq!(m.open_from(b"xxaaaa"), 3, "the longest proper prefix of aaab");
        assert_eq!(m.open_from(b"xxaaab"), 6);
        assert_eq!(m.open_from(b""), 0);
        assert_eq!(masker(&[]).open_from(b"abc"), 3);
    }

    #[test]
    fn render_masks_ranges_and_everything_from_a_point() {
        let buf = b"0123456789";
        assert_eq!(render(buf, 0..10, &[2..4, 6..7], 10), "01********45********789");
        let before_the_range = Range { start: 2, end: 4 };
        assert_eq!(render(buf, 3..10, std::slice::from_ref(&before_the_range), 8), "********4567********");
        assert_eq!(render(buf, 0..5, &[], 5), "01234");
        assert_eq!(render(buf, 0..5, &[], 0), "********");
    }
}
