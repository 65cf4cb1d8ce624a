//! Baton's configuration, read once at start: built-in defaults, then a TOML file (`--config`,
//! `BATON_CONFIG`, or `baton.toml` when present), then `BATON_…` environment variables, then the
//! command line. Environment names are `BATON_` plus the key path upper-cased with sections joined
//! by `_` (`database.url` → `BATON_DATABASE_URL`, `ha.node_id` → `BATON_HA_NODE_ID`). Unknown keys
//! are errors, and every error names the key and the fix. [`generate`] writes a commented file
//! with fresh secrets for a new installation.

mod env;
mod generate;
mod model;
mod secret;
mod validate;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

pub use generate::{Installation, generate};
pub use model::*;
pub use secret::Secret;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key has a value Baton cannot use.
    #[error("config key `{key}`{source_hint}: {message}; {fix}")]
    Invalid { key: String, source_hint: String, message: String, fix: String },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

impl Error {
    pub(crate) fn invalid(key: &str, message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::Invalid {
            key: key.to_owned(),
            source_hint: format!(" (env {})", env::var_name(key)),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Where the configuration file is, if any: an explicit path must exist; without one,
/// `baton.toml` in the working directory is used when present.
pub fn resolve_file(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(Error::File {
                path: p.to_owned(),
                message: "not found; fix the path or drop --config/BATON_CONFIG".into(),
            });
        }
        return Ok(Some(p.to_owned()));
    }
    let default = PathBuf::from("baton.toml");
    Ok(default.is_file().then_some(default))
}

/// Loads and validates the configuration from the file (if any) and the process environment.
pub fn load(file: Option<&Path>) -> Result<Config> {
    load_from(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from(file: Option<&Path>, vars: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::File { path: path.to_owned(), message: e.to_string() })?;
        fig = fig.merge(Toml::string(&text));
    }
    let (env_layer, from_env) = env::provider(vars)?;
    fig = fig.merge(env_layer);
    let cfg: Config = fig.extract_lossy().map_err(|e| figment_error(e, file, &from_env))?;
    validate::check(cfg)
}

fn figment_error(e: figment::Error, file: Option<&Path>, from_env: &[String]) -> Error {
    let key = e.path.join(".");
    let source_hint = if from_env.contains(&key) {
        format!(" (env {})", env::var_name(&key))
    } else if let Some(f) = file {
        format!(" (in {})", f.display())
    } else {
        String::new()
    };
    let message = e.kind.to_string();
    let fix = if message.starts_with("unknown field") {
        "remove it or fix its spelling; `baton config check` prints every key".to_owned()
    } else {
        "give it a value of the expected type".to_owned()
    };
    Error::Invalid { key: if key.is_empty() { "(top level)".into() } else { key }, source_hint, message, fix }
}

impl Config {
    /// The effective configuration as TOML, with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
