//! Layering rules, checked on the parsed source: each top-level module may use only the
//! modules below it, every top-level module is in the table, only `cli` reads the
//! environment, prints or exits, and only `layout` spells the storage folders
//! (`basebackups_005`, `wal_005`) in a string literal: every other module builds and reads keys
//! through it.
//!
//! The checker parses every file under `src/` with `syn` and resolves each path it finds,
//! in code, in `use` trees (groups, nesting, renames, globs) and inside macro invocations,
//! against the file's own imports and its place in the module tree (`crate::`, `super::`,
//! `self::`). Items under `#[cfg(test)]` may read the environment and print; they obey the
//! layering like any other code, and may spell keys as fixtures (so may files of modules
//! declared under `#[cfg(test)]`). Clippy's `disallowed-methods` (clippy.toml) guards the same
//! functions at compile time; `cli` allows them.
//!
//! The tests after the checker feed it one violation of each kind and see it fail.
//!
//! The last part of the file measures functions: none in `src` is longer than 80 lines unless
//! `docs/architecture.md` lists it under "Long functions" (tables only); its tests feed it long
//! functions of each kind and stale listings.

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
    ("config", &["storage", "compression", "pg", "util"]),
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

/// The module that alone builds and reads storage keys.
const KEY_LAYOUT: &str = "layout";

/// The start of a string literal that spells a storage key: outside [`KEY_LAYOUT`] only in
/// test code.
const KEY_PREFIXES: &[&str] = &["basebackups_005", "wal_005"];

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
    let mut test_modules: Vec<Vec<String>> = Vec::new();
    let mut key_literals: Vec<(Vec<String>, Violation)> = Vec::new();
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
            attr_depth: 0,
            found: Vec::new(),
            test_modules: Vec::new(),
            key_literals: Vec::new(),
        };
        checker.visit_file(&ast);
        found.extend(checker.found);
        test_modules.extend(checker.test_modules);
        key_literals.extend(checker.key_literals);
    }
    // Key literals count only outside test code: not in files of test-only modules either.
    for (module, violation) in key_literals {
        if !test_modules.iter().any(|t| module.starts_with(t)) {
            found.push(violation);
        }
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
    /// How many attributes enclose the visitor (doc comments are string literals too).
    attr_depth: usize,
    found: Vec<Violation>,
    /// Modules in files of their own declared under `#[cfg(test)]` (`mod tests;`).
    test_modules: Vec<Vec<String>>,
    /// String literals spelling a storage key outside test items, with their module.
    key_literals: Vec<(Vec<String>, Violation)>,
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
                TokenTree::Literal(literal) => {
                    if let syn::Lit::Str(text) = syn::Lit::new(literal.clone()) {
                        self.check_literal(&text.value(), literal.span().start().line);
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }

    /// A string literal spelling a storage key outside `layout` and test code.
    fn check_literal(&mut self, value: &str, line: usize) {
        if self.test_depth > 0
            || self.attr_depth > 0
            || self.top() == KEY_LAYOUT
            || !KEY_PREFIXES.iter().any(|p| value.starts_with(p))
        {
            return;
        }
        let own = self.top().to_string();
        let violation = Violation {
            file: self.file.clone(),
            line,
            message: format!(
                "`{own}` spells the storage key {value:?}: keys are built and read only in `{KEY_LAYOUT}`"
            ),
        };
        self.key_literals.push((self.module.clone(), violation));
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
        if !inline && self.test_depth > 0 {
            let mut path = self.module.clone();
            path.push(item.ident.to_string());
            self.test_modules.push(path);
        }
        if inline {
            self.module.push(item.ident.to_string());
        }
        syn::visit::visit_item_mod(self, item);
        if inline {
            self.module.pop();
        }
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        self.attr_depth += 1;
        syn::visit::visit_attribute(self, attr);
        self.attr_depth -= 1;
    }

    fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
        self.check_literal(&lit.value(), lit.span().start().line);
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

// ---------------------------------------------------------------------------------------------
// Function length: every `fn` in src (free functions, impl and trait methods, test functions,
// functions nested in functions) has at most [`MAX_FN_LINES`] lines, from the line of its `fn`
// keyword to the line of its closing brace. A longer one (a table) must be listed, with the
// reason, under [`LONG_FUNCTIONS_HEADING`] in [`LONG_FUNCTIONS_DOC`]; a listed one that is gone
// or no longer long fails too. A function is named by its module path and its own name
// (`archive::reader::extract_member` for a method of a type in `src/archive/reader.rs`;
// inline modules count: `retention::tests::cases::delta_chains`). Functions written inside
// macro invocations (`proptest! { .. }`) are not parsed and not measured.

/// The most lines a function may have.
const MAX_FN_LINES: usize = 80;

/// The document that lists the exceptions, relative to the crate root, and its section.
const LONG_FUNCTIONS_DOC: &str = "docs/architecture.md";
const LONG_FUNCTIONS_HEADING: &str = "## Long functions";

/// One function of src: its name (`module::path::fn`), where it starts, how long it is.
#[derive(Debug)]
struct FnLength {
    name: String,
    file: String,
    line: usize,
    lines: usize,
}

/// A function the doc allows to be long: a bullet `` - `module::path::fn`: reason ``.
#[derive(Debug, Clone)]
struct Exception {
    name: String,
    reason: String,
    /// The line of its bullet in the doc.
    line: usize,
}

/// Collects the functions of one file.
struct Lengths {
    file: String,
    module: Vec<String>,
    found: Vec<FnLength>,
}

impl Lengths {
    fn record(&mut self, ident: &syn::Ident, start: usize, end: usize) {
        let mut path = self.module.clone();
        path.push(ident.to_string());
        self.found.push(FnLength {
            name: path.join("::"),
            file: self.file.clone(),
            line: start,
            lines: end.saturating_sub(start) + 1,
        });
    }
}

impl<'ast> Visit<'ast> for Lengths {
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

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.record(
            &item.sig.ident,
            item.sig.fn_token.span.start().line,
            item.block.brace_token.span.close().start().line,
        );
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.record(
            &item.sig.ident,
            item.sig.fn_token.span.start().line,
            item.block.brace_token.span.close().start().line,
        );
        syn::visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.record(
                &item.sig.ident,
                item.sig.fn_token.span.start().line,
                block.brace_token.span.close().start().line,
            );
        }
        syn::visit::visit_trait_item_fn(self, item);
    }
}

/// Every function of the sources with its length. A file that does not parse is left to
/// [`check`], which reports it.
fn fn_lengths(sources: &[Source]) -> Vec<FnLength> {
    let mut found = Vec::new();
    for source in sources {
        let Ok(ast) = syn::parse_file(&source.text) else {
            continue;
        };
        let module = module_path(&source.path).unwrap_or_else(|| vec!["main".to_string()]);
        let mut lengths = Lengths {
            file: source.path.display().to_string(),
            module,
            found: Vec::new(),
        };
        lengths.visit_file(&ast);
        found.extend(lengths.found);
    }
    found
}

/// The bullets of the [`LONG_FUNCTIONS_HEADING`] section of `doc`, up to the next `## `
/// heading. A bullet without a reason is an error, as `line: message`.
fn listed_exceptions(doc: &str) -> Result<Vec<Exception>, String> {
    let mut in_section = false;
    let mut found = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with("## ") || line.starts_with("# ") {
            in_section = line.trim_end() == LONG_FUNCTIONS_HEADING;
            continue;
        }
        let Some(rest) = line.strip_prefix("- `").filter(|_| in_section) else {
            continue;
        };
        let Some((name, after)) = rest.split_once('`') else {
            return Err(format!("{}: a bullet without a closing backtick", i + 1));
        };
        let reason = after.trim_start_matches([':', ' ']).trim();
        if reason.is_empty() {
            return Err(format!("{}: `{name}` is listed without a reason", i + 1));
        }
        found.push(Exception {
            name: name.to_string(),
            reason: reason.to_string(),
            line: i + 1,
        });
    }
    Ok(found)
}

/// Functions over [`MAX_FN_LINES`] not listed, and listed exceptions that are gone or short.
fn check_lengths(sources: &[Source], exceptions: &[Exception]) -> Vec<Violation> {
    let lengths = fn_lengths(sources);
    let mut found = Vec::new();
    for f in lengths.iter().filter(|f| f.lines > MAX_FN_LINES) {
        if !exceptions.iter().any(|e| e.name == f.name) {
            found.push(Violation {
                file: f.file.clone(),
                line: f.line,
                message: format!(
                    "`{}` has {} lines, more than {MAX_FN_LINES}: split it at its steps (a table \
                     may instead be listed under \"{LONG_FUNCTIONS_HEADING}\" in \
                     {LONG_FUNCTIONS_DOC})",
                    f.name, f.lines
                ),
            });
        }
    }
    for exception in exceptions {
        let longest = lengths
            .iter()
            .filter(|f| f.name == exception.name)
            .map(|f| f.lines)
            .max();
        let problem = match longest {
            None => "no such function exists".to_string(),
            Some(lines) if lines <= MAX_FN_LINES => {
                format!("it has only {lines} lines: remove it from the list")
            }
            Some(_) => continue,
        };
        found.push(Violation {
            file: LONG_FUNCTIONS_DOC.to_string(),
            line: exception.line,
            message: format!(
                "listed long function `{}` ({}): {problem}",
                exception.name, exception.reason
            ),
        });
    }
    found
}

#[test]
fn no_function_in_src_is_longer_than_80_lines_unless_listed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join(LONG_FUNCTIONS_DOC)).unwrap();
    assert!(
        doc.lines().any(|l| l.trim_end() == LONG_FUNCTIONS_HEADING),
        "{LONG_FUNCTIONS_DOC} has no \"{LONG_FUNCTIONS_HEADING}\" section"
    );
    let exceptions = listed_exceptions(&doc).unwrap_or_else(|e| panic!("{LONG_FUNCTIONS_DOC}:{e}"));
    let sources = crate_sources();
    let measured = fn_lengths(&sources);
    assert!(
        measured.len() > 500,
        "found only {} functions",
        measured.len()
    );
    let found = check_lengths(&sources, &exceptions);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(found.is_empty(), "long functions:\n{}", lines.join("\n"));
}

/// A function of `body_lines` lines of body, plus its `fn` line and closing brace.
fn function_text(name: &str, body_lines: usize) -> String {
    format!(
        "fn {name}() {{\n{}}}\n",
        "    let _ = 1;\n".repeat(body_lines)
    )
}

fn length_messages(path: &str, text: &str, exceptions: &[Exception]) -> Vec<String> {
    check_lengths(
        &[Source {
            path: PathBuf::from(path),
            text: text.to_string(),
        }],
        exceptions,
    )
    .into_iter()
    .map(|v| v.message)
    .collect()
}

fn exception(name: &str) -> Exception {
    Exception {
        name: name.to_string(),
        reason: "a table".to_string(),
        line: 1,
    }
}

#[test]
fn a_function_of_81_lines_fails_and_one_of_80_passes() {
    let long = function_text("long", MAX_FN_LINES - 1);
    let found = length_messages("src/ops/x.rs", &long, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("`ops::x::long` has 81 lines"),
        "{found:?}"
    );
    let fits = function_text("fits", MAX_FN_LINES - 2);
    assert_eq!(
        length_messages("src/ops/x.rs", &fits, &[]),
        Vec::<String>::new()
    );
}

#[test]
fn long_methods_test_functions_and_nested_functions_fail_too() {
    let body = "    let _ = 1;\n".repeat(MAX_FN_LINES);
    let text = format!(
        "struct S;\nimpl S {{\n    fn method(&self) {{\n{body}    }}\n}}\n\
         trait T {{\n    fn provided(&self) {{\n{body}    }}\n    fn required(&self);\n}}\n\
         #[cfg(test)]\nmod tests {{\n    #[test]\n    fn a_case() {{\n{body}    }}\n}}\n\
         fn outer() {{\n    fn inner() {{\n{body}    }}\n}}\n"
    );
    let found = length_messages("src/archive/reader.rs", &text, &[]);
    for name in [
        "`archive::reader::method`",
        "`archive::reader::provided`",
        "`archive::reader::tests::a_case`",
        "`archive::reader::inner`",
        // It holds `inner`, so it is long too.
        "`archive::reader::outer`",
    ] {
        assert!(
            found.iter().any(|m| m.contains(name)),
            "{name} not flagged: {found:?}"
        );
    }
    assert_eq!(found.len(), 5, "{found:?}");
}

#[test]
fn a_listed_long_function_passes_and_a_stale_listing_fails() {
    let long = function_text("table", MAX_FN_LINES);
    assert_eq!(
        length_messages(
            "src/config/registry.rs",
            &long,
            &[exception("config::registry::table")]
        ),
        Vec::<String>::new()
    );
    let short = function_text("table", 3);
    let found = length_messages(
        "src/config/registry.rs",
        &short,
        &[exception("config::registry::table")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("has only 5 lines"), "{found:?}");
    let found = length_messages(
        "src/config/registry.rs",
        &short,
        &[exception("config::registry::gone")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("no such function exists"), "{found:?}");
}

#[test]
fn the_exceptions_are_the_bullets_of_their_section_with_a_reason() {
    let doc = "# Title\n\n## Long functions\n\nIntro text.\n\n\
               - `config::registry::table`: a table\n\
               - `cli::dispatch` being split\n\n\
               ## Next\n\n- `ops::elsewhere`: not an exception\n";
    let found = listed_exceptions(doc).unwrap();
    let names: Vec<&str> = found.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["config::registry::table", "cli::dispatch"]);
    assert_eq!(found[0].reason, "a table");
    assert_eq!(found[1].reason, "being split");
    assert_eq!(found[0].line, 7);
    let error = listed_exceptions("## Long functions\n- `ops::x::run`\n").unwrap_err();
    assert!(error.contains("without a reason"), "{error}");
}

#[test]
fn a_storage_folder_spelled_outside_layout_fails() {
    assert_flags(
        "src/ops/delete.rs",
        "fn f(k: &str) -> Option<&str> { k.strip_prefix(\"basebackups_005/\") }",
        "spells the storage key \"basebackups_005/\"",
    );
    assert_flags(
        "src/retention/objects.rs",
        "const WAL: &str = \"wal_005\";",
        "spells the storage key \"wal_005\"",
    );
    // Inside a macro, too.
    assert_flags(
        "src/ops/x.rs",
        "fn f(n: &str) -> String { format!(\"wal_005/{n}.lz4\") }",
        "spells the storage key \"wal_005/{n}.lz4\"",
    );
}

#[test]
fn layout_tests_and_prose_may_spell_storage_folders() {
    let key = "fn f() -> &'static str { \"basebackups_005/x\" }";
    assert_eq!(check_one("src/layout/backup.rs", key), Vec::<String>::new());
    let in_test = "#[cfg(test)]\nmod tests { const K: &str = \"wal_005/x\"; }";
    assert_eq!(check_one("src/ops/x.rs", in_test), Vec::<String>::new());
    let prose =
        "/// `wal_005/<file>`\n#[doc = \"wal_005\"]\nfn f() -> &'static str { \"see wal_005\" }";
    assert_eq!(check_one("src/ops/x.rs", prose), Vec::<String>::new());
    // A test module in a file of its own: the file is test code; without `cfg(test)` it is not.
    let sources = |attr: &str| {
        vec![
            Source {
                path: PathBuf::from("src/ops/x.rs"),
                text: format!("{attr}\nmod tests;"),
            },
            Source {
                path: PathBuf::from("src/ops/x/tests.rs"),
                text: "const K: &str = \"wal_005/x\";".to_string(),
            },
        ]
    };
    assert_eq!(check(&sources("#[cfg(test)]")), Vec::<Violation>::new());
    let found = check(&sources(""));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].file, "src/ops/x/tests.rs");
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
