//! Tracing for every Baton process: readable lines on a terminal, JSON lines otherwise (or as
//! configured), filtered by `log.level` (a `tracing` filter such as `info,baton_dispatcher=debug`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text on a terminal, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, format: Format) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| {
        format!("config key `log.level`: {level:?} is not a valid filter ({e}); use a level such as info or debug")
    })?;
    let json = match format {
        Format::Json => true,
        Format::Text => false,
        Format::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        // Every enclosing span's fields (a request's id and node, a task's id) on every line.
        builder.json().flatten_event(true).with_current_span(true).with_span_list(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests starting several servers) keeps the first subscriber.
    let _ = result;
    Ok(())
}
