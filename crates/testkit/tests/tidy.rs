//! Tidy checks that keep the architecture's rules true: every crate and module says what it is
//! for, files stay small, services never depend on each other, and each service writes only the
//! tables it owns (it builds only its own `baton_store::<service>::Tables`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("migrations"), &mut files);
    files
}

#[test]
fn every_file_opens_with_a_doc_comment() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !(first.starts_with("//!") || first.starts_with("#![") && text.contains("//!"))
        })
        .collect();
    assert!(missing.is_empty(), "files without a `//!` opening paragraph: {missing:#?}");
}

#[test]
fn files_stay_small() {
    const LIMIT: usize = 600;
    let big: Vec<_> = sources()
        .into_iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (n > LIMIT).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(big.is_empty(), "files over {LIMIT} lines; split them: {big:#?}");
}

const SERVICES: [&str; 4] = ["gateway", "scheduler", "dispatcher", "runner"];

#[test]
fn services_never_depend_on_each_other() {
    let root = workspace();
    for svc in SERVICES {
        let manifest = std::fs::read_to_string(root.join(format!("crates/{svc}/Cargo.toml"))).unwrap();
        for other in SERVICES.iter().filter(|o| **o != svc) {
            assert!(
                !manifest.contains(&format!("baton-{other}")),
                "crates/{svc} depends on baton-{other}; talk through proto instead"
            );
        }
    }
}

#[test]
fn services_write_only_their_own_tables() {
    let root = workspace();
    let owners = [
        ("gateway", "dispatcher"),
        ("dispatcher", "gateway"),
        ("scheduler", "gateway"),
        ("scheduler", "dispatcher"),
        ("runner", "gateway"),
        ("runner", "dispatcher"),
        ("gateway", "scheduler"),
        ("dispatcher", "scheduler"),
        ("runner", "scheduler"),
    ];
    for (svc, foreign) in owners {
        let mut files = Vec::new();
        rust_files(&root.join(format!("crates/{svc}/src")), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                !text.contains(&format!("baton_store::{foreign}")),
                "{} uses baton_store::{foreign}: only the {foreign} writes its tables; read through baton_store::views or call it over gRPC",
                f.display()
            );
        }
    }
}
