//! Layering rules, checked on the source: each top-level module may use only the modules
//! below it, and only `cli` reads the environment or prints.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Module → the crate modules it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "config",
            "ops",
            "storage",
            "compression",
            "layout",
            "pg",
            "retention",
            "schedule",
            "util",
        ],
    ),
    ("config", &["storage", "compression", "util"]),
    (
        "ops",
        &[
            "config",
            "storage",
            "compression",
            "layout",
            "pg",
            "archive",
            "retention",
            "schedule",
            "util",
        ],
    ),
    ("retention", &["layout", "pg"]),
    ("schedule", &["util"]),
    ("layout", &["storage", "compression", "pg"]),
    ("pg", &["util"]),
    ("compression", &[]),
    ("storage", &["util"]),
    ("archive", &["util"]),
    ("util", &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

#[test]
fn modules_only_use_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for (other, _) in ALLOWED {
                if *other == module {
                    continue;
                }
                let used = line.contains(&format!("crate::{other}::"))
                    || line.contains(&format!("crate::{other};"))
                    || line.contains(&format!("crate::{other}}}"))
                    || line.contains(&format!("crate::{{{other}"));
                if used && !allowed.contains(other) {
                    problems.push(format!(
                        "{}:{}: `{module}` uses `{other}`",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn only_cli_reads_the_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in &files {
        let module = top_module(&src, file).unwrap_or_default();
        if module == "cli" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // Test modules may set up their own environment.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for needle in [
            "std::env::var",
            "env::var(",
            "std::env::vars",
            "println!",
            "eprintln!",
        ] {
            assert!(
                !code.contains(needle),
                "{} uses `{needle}`: only cli may",
                file.display()
            );
        }
    }
}
