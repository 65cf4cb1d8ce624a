//! Values stored as JSON inside rows: a task's frozen spec and log lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a task runs, copied from its template when the task is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub script: String,
    pub shell: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// 0 = no timeout.
    #[serde(default)]
    pub timeout_seconds: u32,
    /// Names of project secrets given to the script as environment variables; their values are
    /// read (and decrypted) only when the task is assigned, and never stored with the task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl TaskSpec {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<TaskSpec> {
        serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("task spec: {e}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines written by Baton itself.
    System,
}

impl LogStream {
    /// The name the API uses: `stdout`, `stderr` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }

    /// The stream a name of [`LogStream::as_str`] stands for.
    pub fn parse(s: &str) -> Option<LogStream> {
        [LogStream::Stdout, LogStream::Stderr, LogStream::System].into_iter().find(|x| x.as_str() == s)
    }

    fn tag(self) -> &'static str {
        match self {
            LogStream::Stdout => "o",
            LogStream::Stderr => "e",
            LogStream::System => "s",
        }
    }

    fn from_tag(tag: &str) -> Option<LogStream> {
        match tag {
            "o" => Some(LogStream::Stdout),
            "e" => Some(LogStream::Stderr),
            "s" => Some(LogStream::System),
            _ => None,
        }
    }
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub seq: i64,
    pub time_ms: i64,
    pub stream: LogStream,
    pub text: String,
}

/// Encodes lines compactly as `[[seq, time_ms, "o", "text"], ...]`.
pub(crate) fn encode_lines(lines: &[LogLine]) -> String {
    let rows: Vec<(i64, i64, &str, &str)> =
        lines.iter().map(|l| (l.seq, l.time_ms, l.stream.tag(), l.text.as_str())).collect();
    serde_json::to_string(&rows).unwrap_or_default()
}

pub(crate) fn decode_lines(data: &str) -> Result<Vec<LogLine>> {
    let rows: Vec<(i64, i64, String, String)> =
        serde_json::from_str(data).map_err(|e| Error::Corrupt(format!("log chunk: {e}")))?;
    rows.into_iter()
        .map(|(seq, time_ms, tag, text)| {
            let stream =
                LogStream::from_tag(&tag).ok_or_else(|| Error::Corrupt(format!("log chunk: stream {tag:?}")))?;
            Ok(LogLine { seq, time_ms, stream, text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_round_trip() {
        let lines = vec![
            LogLine { seq: 1, time_ms: 5, stream: LogStream::Stdout, text: "hi \"there\"".into() },
            LogLine { seq: 2, time_ms: 6, stream: LogStream::Stderr, text: "ünïcode\t".into() },
            LogLine { seq: 3, time_ms: 7, stream: LogStream::System, text: String::new() },
        ];
        assert_eq!(decode_lines(&encode_lines(&lines)).unwrap(), lines);
    }

    #[test]
    fn corrupt_chunks_are_errors_not_panics() {
        assert!(decode_lines("not json").is_err());
        assert!(decode_lines(r#"[[1,2,"x","t"]]"#).is_err());
    }
}
