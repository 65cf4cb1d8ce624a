//! The `BATON_…` environment layer. A variable's name is `BATON_` plus its key path upper-cased
//! with `.` turned into `_`. Because key names contain `_` too (`ha.node_id`), the name is looked
//! up in the list of known keys rather than split.

use std::collections::HashMap;

use figment::Figment;
use figment::providers::Serialized;

use crate::{Config, Error, Result};

pub const PREFIX: &str = "BATON_";

/// `BATON_` variables that are not configuration keys: the config file's path, and what Baton
/// sets for the scripts it runs (a task may itself run `baton`).
const NOT_KEYS: &[&str] = &["CONFIG", "TASK_ID", "ATTEMPT", "PROJECT_ID", "TEMPLATE_ID"];

/// The environment variable for a key path.
pub fn var_name(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Every leaf key path of the configuration, from the shape of the defaults.
pub fn key_paths() -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk("", &serde_json::to_value(Config::default()).unwrap_or_default(), &mut out);
    out
}

/// A figment provider of the known `BATON_` variables among `vars`, and the keys they set; an
/// unknown variable is an error.
pub fn provider(vars: impl IntoIterator<Item = (String, String)>) -> Result<(Figment, Vec<String>)> {
    let known: HashMap<String, String> = key_paths().into_iter().map(|k| (var_name(&k), k)).collect();
    let mut fig = Figment::new();
    let mut set = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        if NOT_KEYS.contains(&rest) {
            continue;
        }
        let Some(key) = known.get(&name) else {
            return Err(Error::Invalid {
                key: name.clone(),
                source_hint: String::new(),
                message: "is not a configuration key".into(),
                fix: "unset it or fix its spelling; `baton config check` prints every key".into(),
            });
        };
        // Values stay strings here; extraction converts them to the key's type.
        fig = fig.merge(Serialized::default(key, value).profile(figment::Profile::Default));
        set.push(key.clone());
    }
    Ok((fig, set))
}
