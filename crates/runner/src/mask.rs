//! Masking secret values in log lines. Lines are masked whole, before they are cut into chunks,
//! so chunk boundaries never split a value; over-long lines are split where no value straddles the
//! cut (see [`Masker::safe_cut`]). Each line of a multi-line value is masked on its own, because
//! scripts print values line by line. Values shorter than [`MIN_LEN`] are not masked: masking "1"
//! or "yes" would destroy the log without protecting anything.

use std::borrow::Cow;

pub const MASK: &str = "********";
pub const MIN_LEN: usize = 4;

#[derive(Debug, Default)]
pub struct Masker {
    /// Longest first, so a value containing another is masked whole.
    needles: Vec<String>,
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a String>) -> Masker {
        let mut needles: Vec<String> = values
            .into_iter()
            .flat_map(|v| v.lines())
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| l.len() >= MIN_LEN)
            .map(str::to_owned)
            .collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Masker { needles }
    }

    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = Cow::Owned(out.replace(n.as_str(), MASK));
            }
        }
        out
    }

    /// A cut point at or before `cut` that splits no value and no UTF-8 character.
    pub fn safe_cut(&self, buf: &[u8], cut: usize) -> usize {
        let mut cut = cut.min(buf.len());
        for n in &self.needles {
            let n = n.as_bytes();
            let start_min = cut.saturating_sub(n.len() - 1);
            for start in start_min..cut {
                // The buffer may end inside the value (the rest is not read yet): a prefix of the
                // value reaching the end counts as the value.
                let seen = &buf[start..buf.len().min(start + n.len())];
                if n.starts_with(seen) && start + n.len() > cut {
                    cut = start;
                    break;
                }
            }
        }
        while cut > 0 && cut < buf.len() && (buf[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        cut
    }
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
    }

    #[test]
    fn longer_values_win_over_values_they_contain() {
        let m = masker(&["secret", "secret-and-more"]);
        assert_eq!(m.mask("x secret-and-more y secret"), "x ******** y ********");
    }

    #[test]
    fn cuts_never_split_a_value_or_a_character() {
        let m = masker(&["TOPSECRET"]);
        let buf = b"aaaaTOPSECRETbbbb";
        assert_eq!(m.safe_cut(buf, 8), 4, "cut moves before the value");
        assert_eq!(m.safe_cut(buf, 13), 13, "a cut after the value stays");
        assert_eq!(m.safe_cut(buf, 2), 2);
        assert_eq!(m.safe_cut(b"aaaaTOPSE", 9), 4, "a value the buffer ends inside moves the cut too");
        let utf8 = "aé".as_bytes();
        assert_eq!(m.safe_cut(utf8, 2), 1, "cut moves to a character boundary");
    }
}
