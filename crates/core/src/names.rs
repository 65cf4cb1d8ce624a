//! The shapes of names users give: runner labels and environment variable names.

/// Labels are short names: letters, digits and `- _ . : =`, at most 64 characters.
pub fn valid_label(l: &str) -> bool {
    !l.is_empty() && l.len() <= 64 && l.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:=".contains(c))
}

/// Environment variable names as POSIX shells accept them.
pub fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(valid_label("os=linux:x86_64"));
        assert!(!valid_label(""));
        assert!(!valid_label("a b"));
        assert!(!valid_label(&"x".repeat(65)));
    }

    #[test]
    fn env_names_follow_posix() {
        assert!(valid_env_name("_A1"));
        assert!(!valid_env_name(""));
        assert!(!valid_env_name("1A"));
        assert!(!valid_env_name("A-B"));
    }
}
