//! `baton config generate [--cluster]`: the file it prints is accepted as it is by
//! `baton config check`, whose dump masks the fresh secrets, and every run makes new secrets.

use std::process::{Command, Output};

/// `baton` with none of the environment's `BATON_` variables (the harness's own among them), so
/// the configuration comes from the generated file alone.
fn baton(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
        cmd.env_remove(k);
    }
    cmd.current_dir(dir);
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn generate(dir: &std::path::Path, args: &[&str]) -> String {
    let out = baton(dir).args(["config", "generate"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stderr.is_empty(), "nothing but the file is printed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The three secrets of a generated file.
fn secrets(file: &str) -> [String; 3] {
    let v: toml::Value = toml::from_str(file).unwrap();
    let get = |table: &str, key: &str| v[table][key].as_str().unwrap().to_owned();
    [get("cluster", "secret"), get("secrets", "encryption_key"), get("admin", "password")]
}

#[test]
fn generated_files_pass_the_check_with_their_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    for (args, cluster) in [(&[][..], false), (&["--cluster"][..], true)] {
        let file = generate(dir.path(), args);
        let path = dir.path().join(if cluster { "cluster.toml" } else { "single.toml" });
        std::fs::write(&path, &file).unwrap();
        let out = baton(dir.path()).args(["config", "check", "--config"]).arg(&path).output().unwrap();
        let dump = text(&out);
        assert!(out.status.success(), "`config check` refused the generated file ({args:?}):\n{dump}\n{file}");
        let effective: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(effective["ha"]["enabled"].as_bool(), Some(cluster), "{dump}");
        let url = effective["database"]["url"].as_str().unwrap();
        assert!(url.starts_with(if cluster { "postgres://" } else { "sqlite://" }), "{url}");
        for secret in secrets(&file) {
            assert!(!dump.contains(&secret), "`config check` printed a secret:\n{dump}");
        }
        assert_eq!(effective["cluster"]["secret"].as_str(), Some("********"), "{dump}");
    }
}

#[test]
fn every_run_makes_new_secrets() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["--cluster"][..]] {
        let (a, b) = (secrets(&generate(dir.path(), args)), secrets(&generate(dir.path(), args)));
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(x, y, "two runs gave the same secret");
        }
        let [cluster_secret, key, password] = a;
        assert!(cluster_secret.len() >= 32, "{cluster_secret}");
        assert_eq!(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).unwrap().len(), 32);
        assert!(password.len() >= 8);
    }
}
