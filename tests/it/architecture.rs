//! Layering rules, checked on the parsed source: each top-level module may use only the
//! modules below it, every top-level module is in the table, and only `cli` reads the
//! environment, prints or exits.
//!
//! The checker parses every file under `src/` with `syn` and resolves each path it finds,
//! in code, in `use` trees (groups, nesting, renames, globs) and inside macro invocations,
//! against the file's own imports and its place in the module tree (`crate::`, `super::`,
//! `self::`). Items under `#[cfg(test)]` may read the environment and print; they obey the
//! layering like any other code. Clippy's `disallowed-methods` (clippy.toml) guards the same
//! functions at compile time; `cli` allows them.
//!
//! The tests at the end of this file feed the checker one violation of each kind and see it
//! fail.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// Module → the crate modules it may use.
const LAYERS: &[(&str, &[&str])] = &[
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

/// The modules that talk to the user: they alone read the environment, print and exit.
const USER_FACING: &[&str] = &["cli"];

/// Functions only [`USER_FACING`] modules may name.
const USER_ONLY_PATHS: &[&str] = &[
    "std::env::var",
    "std::env::var_os",
    "std::env::vars",
    "std::env::vars_os",
    "std::env::set_var",
    "std::env::remove_var",
    "std::process::exit",
    "std::io::stdout",
    "std::io::stderr",
];

/// Macros only [`USER_FACING`] modules may use.
const USER_ONLY_MACROS: &[&str] = &["println", "print", "eprintln", "eprint", "dbg"];

/// One source file: its path relative to the crate root (`src/ops/wal_push.rs`) and its text.
struct Source {
    path: PathBuf,
    text: String,
}

/// A broken rule, as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The module path of a file: `src/ops/wal_push.rs` → `[ops, wal_push]`, `src/ops/mod.rs` →
/// `[ops]`, `src/lib.rs` → `[]`. `None` for the binary's root, which is its own crate.
fn module_path(path: &Path) -> Option<Vec<String>> {
    let rel = path.strip_prefix("src").unwrap_or(path);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.trim_end_matches(".rs") {
        "main" if parts.is_empty() => return None,
        "lib" if parts.is_empty() => {}
        "mod" => {}
        other => parts.push(other.to_string()),
    }
    Some(parts)
}

/// Checks every file; a module missing from [`LAYERS`] is a violation too.
fn check(sources: &[Source]) -> Vec<Violation> {
    let mut found = Vec::new();
    for source in sources {
        let file = source.path.display().to_string();
        let Some(module) = module_path(&source.path) else {
            continue;
        };
        let ast = match syn::parse_file(&source.text) {
            Ok(ast) => ast,
            Err(e) => {
                found.push(Violation {
                    file,
                    line: e.span().start().line,
                    message: format!("does not parse: {e}"),
                });
                continue;
            }
        };
        if module.is_empty() {
            for item in &ast.items {
                if let syn::Item::Mod(m) = item {
                    let name = m.ident.to_string();
                    if !LAYERS.iter().any(|(layer, _)| *layer == name) {
                        found.push(Violation {
                            file: file.clone(),
                            line: m.ident.span().start().line,
                            message: format!(
                                "top-level module `{name}` is not in the layering table"
                            ),
                        });
                    }
                }
            }
        } else if !LAYERS.iter().any(|(layer, _)| *layer == module[0]) {
            found.push(Violation {
                file: file.clone(),
                line: 1,
                message: format!(
                    "top-level module `{}` is not in the layering table",
                    module[0]
                ),
            });
            continue;
        }
        let mut checker = Checker {
            file,
            aliases: aliases(&ast),
            module,
            test_depth: 0,
            found: Vec::new(),
        };
        checker.visit_file(&ast);
        found.extend(checker.found);
    }
    found
}

/// Every name a file's `use` items bring in, wherever they stand: `env` → `std::env`,
/// `o` → `crate::ops` for `use crate::ops as o`. Glob imports bring no names.
fn aliases(ast: &syn::File) -> HashMap<String, Vec<String>> {
    struct Uses(Vec<(String, Vec<String>)>);
    impl<'ast> Visit<'ast> for Uses {
        fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
            flatten_use(&item.tree, &mut Vec::new(), &mut self.0);
        }
    }
    let mut uses = Uses(Vec::new());
    uses.visit_file(ast);
    uses.0.into_iter().collect()
}

/// Expands a use tree into `(name, full path)` pairs; a glob gives `("*", prefix)`.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(String, Vec<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                if let Some(last) = prefix.last() {
                    out.push((last.clone(), prefix.clone()));
                }
            } else {
                let mut full = prefix.clone();
                full.push(name.clone());
                out.push((name, full));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), full));
        }
        syn::UseTree::Glob(_) => out.push(("*".to_string(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

struct Checker {
    file: String,
    aliases: HashMap<String, Vec<String>>,
    /// The module the visitor is in, inline modules included.
    module: Vec<String>,
    /// How many `#[cfg(test)]` items enclose the visitor.
    test_depth: usize,
    found: Vec<Violation>,
}

impl Checker {
    fn top(&self) -> &str {
        self.module.first().map_or("", String::as_str)
    }

    fn flag(&mut self, line: usize, message: String) {
        let violation = Violation {
            file: self.file.clone(),
            line,
            message,
        };
        if !self.found.contains(&violation) {
            self.found.push(violation);
        }
    }

    /// Resolves a path as written to an absolute one: `crate::x::y`, `std::env::var`, ...
    /// `None` for a local name (a variable, a type of this module, a prelude item).
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        self.resolve_at(segments, 0)
    }

    /// [`Self::resolve`], `depth` imports deep: an import that names itself
    /// (`use zstd::zstd_safe` in a module `zstd`) ends as an external path.
    fn resolve_at(&self, segments: &[String], depth: usize) -> Option<Vec<String>> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments.to_vec()),
            "self" => {
                let mut full = vec!["crate".to_string()];
                full.extend(self.module.iter().cloned());
                full.extend(segments[1..].iter().cloned());
                Some(full)
            }
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let keep = self.module.len().saturating_sub(ups);
                let mut full = vec!["crate".to_string()];
                full.extend(self.module[..keep].iter().cloned());
                full.extend(segments[ups..].iter().cloned());
                Some(full)
            }
            "std" | "core" | "alloc" => Some(segments.to_vec()),
            name => {
                let target = self.aliases.get(name)?;
                if target.first().is_some_and(|t| t == name) || depth > 8 {
                    // An extern crate imported by its own name: nothing to expand.
                    return Some(segments.to_vec());
                }
                let mut full = self.resolve_at(target, depth + 1)?;
                full.extend(segments[1..].iter().cloned());
                Some(full)
            }
        }
    }

    fn check_path(&mut self, segments: &[String], line: usize) {
        let Some(full) = self.resolve(segments) else {
            return;
        };
        let joined = full.join("::");
        if full.first().is_some_and(|f| f == "crate") && full.len() > 1 {
            let other = full[1].as_str();
            let own = self.top().to_string();
            if !own.is_empty() && other != own {
                match LAYERS.iter().find(|(layer, _)| *layer == own) {
                    Some((_, allowed)) if !allowed.contains(&other) => {
                        self.flag(line, format!("`{own}` uses `{other}` (`{joined}`)"));
                    }
                    _ => {}
                }
            }
            if !LAYERS.iter().any(|(layer, _)| *layer == other) && !own.is_empty() {
                // `crate::Something` naming an item of lib.rs is fine; a lower-case name
                // that is not a known module is a module missing from the table.
                if other.chars().next().is_some_and(char::is_lowercase) {
                    self.flag(
                        line,
                        format!("`{other}` (`{joined}`) is not in the layering table"),
                    );
                }
            }
        }
        if self.test_depth == 0
            && !USER_FACING.contains(&self.top())
            && USER_ONLY_PATHS.contains(&joined.as_str())
        {
            let own = self.top().to_string();
            self.flag(line, format!("`{own}` calls `{joined}`: only cli may"));
        }
    }

    /// Paths inside a macro's tokens: `a::b::c` sequences, in every nested group.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => {
                    self.scan_tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(ident) => {
                    let line = ident.span().start().line;
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    // A macro call inside a macro: `name ! (...)`.
                    if let Some(TokenTree::Punct(bang)) = trees.get(j)
                        && bang.as_char() == '!'
                    {
                        self.check_macro_name(&segments, line);
                    }
                    self.check_path(&segments, line);
                    i = j;
                }
                _ => i += 1,
            }
        }
    }

    fn check_macro_name(&mut self, segments: &[String], line: usize) {
        let Some(name) = segments.last() else { return };
        if self.test_depth == 0
            && !USER_FACING.contains(&self.top())
            && USER_ONLY_MACROS.contains(&name.as_str())
        {
            let own = self.top().to_string();
            self.flag(line, format!("`{own}` uses `{name}!`: only cli may print"));
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|list| {
                list.tokens
                    .clone()
                    .into_iter()
                    .any(|t| matches!(t, TokenTree::Ident(ref i) if i == "test"))
            })
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Checker {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let test = is_cfg_test(item_attrs(item));
        self.test_depth += usize::from(test);
        syn::visit::visit_item(self, item);
        self.test_depth -= usize::from(test);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        let test = is_cfg_test(&item.attrs);
        self.test_depth += usize::from(test);
        syn::visit::visit_impl_item_fn(self, item);
        self.test_depth -= usize::from(test);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let inline = item.content.is_some();
        if inline {
            self.module.push(item.ident.to_string());
        }
        syn::visit::visit_item_mod(self, item);
        if inline {
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut pairs = Vec::new();
        flatten_use(&item.tree, &mut Vec::new(), &mut pairs);
        let line = item.use_token.span.start().line;
        for (_, full) in pairs {
            self.check_path(&full, line);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = path
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        self.check_path(&segments, line);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let segments: Vec<String> = mac
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let line = mac
            .path
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        self.check_macro_name(&segments, line);
        self.scan_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

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

fn crate_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| Source {
            text: std::fs::read_to_string(&path).unwrap(),
            path: path.strip_prefix(root).unwrap().to_path_buf(),
        })
        .collect()
}

#[test]
fn the_crate_keeps_its_layers() {
    let sources = crate_sources();
    assert!(sources.len() > 50, "found only {} files", sources.len());
    let found = check(&sources);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        lines.join("\n")
    );
}

/// The checker on one file.
fn check_one(path: &str, text: &str) -> Vec<String> {
    check(&[Source {
        path: PathBuf::from(path),
        text: text.to_string(),
    }])
    .into_iter()
    .map(|v| v.message)
    .collect()
}

fn assert_flags(path: &str, text: &str, needle: &str) {
    let found = check_one(path, text);
    assert!(
        found.iter().any(|m| m.contains(needle)),
        "expected a violation containing {needle:?} in {path}, got {found:?}"
    );
}

#[test]
fn clean_code_passes_the_checker() {
    let text = "use crate::util::pipe;\nuse std::io::{self, Read};\n\
                fn f(r: &mut dyn Read) -> io::Result<()> { pipe::x(); Ok(()) }\n";
    assert_eq!(check_one("src/storage/fs.rs", text), Vec::<String>::new());
    let cli =
        "use std::env;\nfn f() { println!(\"{:?}\", env::var_os(\"X\")); std::process::exit(1) }";
    assert_eq!(check_one("src/cli/mod.rs", cli), Vec::<String>::new());
}

#[test]
fn a_use_group_naming_a_higher_layer_fails() {
    assert_flags(
        "src/storage/fs.rs",
        "use crate::{util, ops::X};",
        "`storage` uses `ops`",
    );
}

#[test]
fn a_multi_line_use_group_fails() {
    assert_flags(
        "src/storage/fs.rs",
        "use crate::{\n    util::pipe,\n    layout::{\n        backup,\n    },\n};",
        "`storage` uses `layout`",
    );
}

#[test]
fn a_renamed_import_fails() {
    assert_flags(
        "src/storage/fs.rs",
        "use crate::ops as o;\nfn f() { o::run(); }",
        "`storage` uses `ops`",
    );
}

#[test]
fn super_super_reaching_a_higher_layer_fails() {
    assert_flags(
        "src/storage/fs.rs",
        "fn f() { super::super::ops::run(); }",
        "`storage` uses `ops`",
    );
    assert_flags(
        "src/storage/s3/client.rs",
        "fn f() { super::super::super::ops::run(); }",
        "`storage` uses `ops`",
    );
    // One `super` from a nested file stays inside its own layer.
    assert_eq!(
        check_one(
            "src/storage/s3/client.rs",
            "fn f() { super::retry::run(); }"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn reading_the_environment_through_an_import_fails() {
    assert_flags(
        "src/ops/wal_push.rs",
        "use std::env;\nfn f() { let _ = env::var_os(\"X\"); }",
        "calls `std::env::var_os`",
    );
    assert_flags(
        "src/ops/wal_push.rs",
        "use std::env::vars as all;\nfn f() { let _ = all(); }",
        "calls `std::env::vars`",
    );
}

#[test]
fn exiting_the_process_below_cli_fails() {
    assert_flags(
        "src/ops/wal_push.rs",
        "fn f() { std::process::exit(1) }",
        "calls `std::process::exit`",
    );
}

#[test]
fn writing_to_stdout_inside_a_macro_fails() {
    assert_flags(
        "src/ops/wal_push.rs",
        "use std::io::{self, Write};\nfn f() { let _ = writeln!(io::stdout(), \"x\"); }",
        "calls `std::io::stdout`",
    );
    assert_flags(
        "src/ops/wal_push.rs",
        "fn f() { eprintln!(\"x\"); }",
        "`eprintln!`",
    );
}

#[test]
fn code_after_a_test_module_is_still_checked() {
    let text = "#[cfg(test)]\nmod tests { fn t() { let _ = std::env::var(\"X\"); } }\n\
                fn after() { let _ = std::env::var(\"Y\"); }";
    let found = check_one("src/ops/wal_push.rs", text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("std::env::var"));
}

#[test]
fn test_code_obeys_the_layering_too() {
    assert_flags(
        "src/storage/fs.rs",
        "#[cfg(test)]\nmod tests { use crate::ops::run; }",
        "`storage` uses `ops`",
    );
}

#[test]
fn a_top_level_module_missing_from_the_table_fails() {
    assert_flags(
        "src/lib.rs",
        "pub mod cli;\npub mod shiny;",
        "`shiny` is not in the layering table",
    );
    assert_flags(
        "src/shiny/mod.rs",
        "fn f() {}",
        "`shiny` is not in the layering table",
    );
    assert_flags(
        "src/ops/x.rs",
        "use crate::shiny::thing;",
        "`shiny` (`crate::shiny::thing`) is not in the layering table",
    );
}

/// The integration tests are one binary, `tests/it/main.rs`: a `.rs` file directly under
/// `tests/` (or another folder there with a `main.rs`) would be a test binary of its own, and a
/// file in `tests/it/` that no `mod` line names would never be compiled or run. Returns one line
/// per such file.
fn test_layout_problems(tests: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(tests).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && name.ends_with(".rs") {
            found.push(format!(
                "tests/{name} is a test binary of its own: move it to tests/it/"
            ));
        } else if path.is_dir() && name != "it" && path.join("main.rs").is_file() {
            found.push(format!("tests/{name}/main.rs is a test binary of its own"));
        }
    }
    let root = tests.join("it");
    if root.join("main.rs").is_file() {
        undeclared_modules(&root, "main.rs", &mut found);
    } else {
        found.push("tests/it/main.rs is missing".to_string());
    }
    found
}

/// Files and folders next to `dir/module_file` that it does not declare with `mod name;`,
/// recursively through folders with a `mod.rs`.
fn undeclared_modules(dir: &Path, module_file: &str, found: &mut Vec<String>) {
    let text = std::fs::read_to_string(dir.join(module_file)).unwrap();
    let declared: Vec<String> = syn::parse_file(&text)
        .unwrap()
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if m.content.is_none() => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let module = if path.is_dir() && path.join("mod.rs").is_file() {
            undeclared_modules(&path, "mod.rs", found);
            name.clone()
        } else if let Some(stem) = name.strip_suffix(".rs").filter(|_| path.is_file()) {
            if name == module_file {
                continue;
            }
            stem.to_string()
        } else {
            continue;
        };
        if !declared.contains(&module) {
            found.push(format!(
                "{} is not declared in {} (`mod {module};`): it is never compiled",
                path.display(),
                dir.join(module_file).display()
            ));
        }
    }
}

#[test]
fn every_integration_test_file_is_a_module_of_the_one_test_binary() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let found = test_layout_problems(&tests);
    assert!(found.is_empty(), "test layout:\n{}", found.join("\n"));
}

#[test]
fn a_stray_test_binary_or_an_undeclared_test_file_fails_the_layout_check() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path();
    std::fs::create_dir_all(tests.join("it/common")).unwrap();
    std::fs::write(tests.join("it/main.rs"), "mod common;\nmod declared;\n").unwrap();
    std::fs::write(tests.join("it/declared.rs"), "").unwrap();
    std::fs::write(tests.join("it/common/mod.rs"), "pub mod pg;\n").unwrap();
    std::fs::write(tests.join("it/common/pg.rs"), "").unwrap();
    std::fs::create_dir(tests.join("fixtures")).unwrap();
    assert_eq!(test_layout_problems(tests), Vec::<String>::new());

    std::fs::write(tests.join("stray.rs"), "").unwrap();
    std::fs::write(tests.join("it/forgotten.rs"), "").unwrap();
    std::fs::write(tests.join("it/common/s3.rs"), "").unwrap();
    let found = test_layout_problems(tests).join("\n");
    assert!(found.contains("tests/stray.rs is a test binary"), "{found}");
    assert!(found.contains("forgotten.rs is not declared"), "{found}");
    assert!(found.contains("s3.rs is not declared"), "{found}");
    assert!(!found.contains("declared.rs is not"), "{found}");
}
