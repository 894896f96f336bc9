//! The layering rules, checked on the source: the import graph of `src/server` has no circle,
//! its layers depend one way (message -> info -> order -> session -> route -> front ends ->
//! reactor), nothing but the server's own wiring imports the reactor, and the lower parts of
//! the crate (`proto`, `store`) know nothing of the parts above them.
//!
//! Every file under `src/server` is a node, named by its module path (`front::resp::words`).
//! Every path it names that starts with `crate::server::`, `super::`, `self::` or one of its
//! own child modules (in `use` declarations, braces expanded, and inline) is an edge to the
//! deepest module file that path lands in. `mod` declarations are not edges. Comments are
//! skipped, and so is the `#[cfg(test)] mod tests` at the end of a file (test-only code).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The server's layers, lowest first: a file may import only files of its own layer or lower.
/// Files not listed (worker, execute, signal, bench_support, the server's `mod.rs`) are checked
/// for circles only.
const LAYERS: &[&[&str]] = &[
    &["message"],
    &["info"],
    &["order"],
    &["session"],
    &["coord"],
    &["route"],
    &[
        "front",
        "front::serve",
        "front::resp",
        "front::resp::admin",
        "front::resp::transaction",
        "front::resp::words",
        "front::capnp",
        "front::capnp::words",
    ],
    &["reactor"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/server`, without `server`: `front/resp/mod.rs` is
/// `front::resp`, `mod.rs` is the empty path.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).expect("under the root");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

/// The source without comments (line comments, doc comments and block comments); string
/// literals are kept as they are (none of them holds a path that matters here).
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let bytes = source.as_bytes();
    let mut index = 0;
    let mut in_string = false;
    while index < bytes.len() {
        let rest = &source[index..];
        if in_string {
            if rest.starts_with("\\\\") || rest.starts_with("\\\"") {
                index += 2;
                continue;
            }
            if bytes[index] == b'"' {
                in_string = false;
            }
            index += 1;
            continue;
        }
        if rest.starts_with("//") {
            index += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if rest.starts_with("/*") {
            index += rest.find("*/").map_or(rest.len(), |end| end + 2);
            continue;
        }
        if bytes[index] == b'"' {
            in_string = true;
            index += 1;
            continue;
        }
        out.push(bytes[index] as char);
        index += 1;
    }
    out
}

/// Expands a `use` tree (no trailing `;`) into its full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).to_string()];
    };
    let prefix = tree[..open].trim();
    let inner = &tree[open + 1..tree.rfind('}').expect("balanced braces")];
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, byte) in inner.bytes().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                items.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(|item| {
            expand(item)
                .into_iter()
                .map(|path| format!("{prefix}{path}"))
        })
        .collect()
}

/// Every path `source` names: `use` declarations expanded, then inline paths starting with
/// `crate::server::`, `super::`, `self::` or `child::` for each of `children`.
fn paths(source: &str, children: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    let mut outside_use = String::new();
    while let Some(at) = find_use(rest) {
        outside_use.push_str(&rest[..at]);
        let end = rest[at..].find(';').map_or(rest.len(), |end| at + end);
        let tree = rest[at + 4..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        found.extend(expand(tree.trim()));
        rest = &rest[end..];
    }
    outside_use.push_str(rest);
    // Inline paths: `crate::server::x::y`, `super::x`, `self::x`, `child::x`.
    let mut roots: Vec<String> = ["crate::server::", "super::", "self::"]
        .map(String::from)
        .to_vec();
    roots.extend(children.iter().map(|child| format!("{child}::")));
    let text = outside_use.as_bytes();
    for start in 0..text.len() {
        let boundary = start == 0
            || !(text[start - 1].is_ascii_alphanumeric()
                || text[start - 1] == b'_'
                || text[start - 1] == b':');
        if !boundary {
            continue;
        }
        let tail = &text[start..];
        if roots.iter().any(|root| tail.starts_with(root.as_bytes())) {
            let len = tail
                .iter()
                .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
                .unwrap_or(tail.len());
            let path = String::from_utf8_lossy(&tail[..len]);
            found.push(path.trim_end_matches(':').to_string());
        }
    }
    found
}

/// The byte offset of the next `use` declaration (`use ` or `pub use `, at a word boundary).
fn find_use(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(at) = source[from..].find("use ") {
        let at = from + at;
        if at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// Resolves `path`, named in module `module` whose child modules are `children`, to an
/// absolute path under `server` (without `server`), or `None` when it leaves the server.
fn resolve(module: &[String], children: &[String], path: &str) -> Option<Vec<String>> {
    let mut parts = path.split("::").filter(|part| !part.is_empty());
    let first = parts.next()?;
    let mut base: Vec<String> = match first {
        child if children.iter().any(|name| name == child) => {
            let mut base = module.to_vec();
            base.push(child.to_string());
            base
        }
        "crate" => {
            if parts.next()? != "server" {
                return None;
            }
            Vec::new()
        }
        "self" => module.to_vec(),
        "super" => {
            // `module` is already `x` for `x/mod.rs` and `x::y` for `x/y.rs`.
            let mut base = module.to_vec();
            base.pop()?;
            base
        }
        _ => return None,
    };
    for part in parts {
        if part == "super" {
            base.pop()?;
        } else if part != "self" {
            base.push(part.to_string());
        }
    }
    Some(base)
}

/// The source before its `#[cfg(test)] mod tests` (by convention the end of the file).
fn without_tests(source: &str) -> &str {
    match source.find("#[cfg(test)]\nmod ") {
        Some(at) => &source[..at],
        None => source,
    }
}

struct Graph {
    /// Module (`front::resp::words`) -> the modules it imports.
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|file| (module_of(&root, file), file.clone()))
        .collect();
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let source = strip_comments(&fs::read_to_string(file).expect("read"));
        let source = without_tests(&source);
        let children: Vec<String> = modules
            .keys()
            .filter(|other| other.len() == module.len() + 1 && other.starts_with(module))
            .map(|other| other[module.len()].clone())
            .collect();
        let mut targets = BTreeSet::new();
        for path in paths(source, &children) {
            let Some(absolute) = resolve(module, &children, &path) else {
                continue;
            };
            // The deepest module file the path lands in.
            let target = (0..=absolute.len())
                .rev()
                .map(|len| absolute[..len].to_vec())
                .find(|prefix| modules.contains_key(prefix))
                .expect("the server's mod.rs matches every path");
            if &target != module && !target.is_empty() {
                targets.insert(target.join("::"));
            }
        }
        edges.insert(module.join("::"), targets);
    }
    Graph { edges }
}

#[test]
fn use_trees_expand() {
    assert_eq!(
        expand("super::message::{Bytes, Op::{self}, route::{self, single as one}}"),
        [
            "super::message::Bytes",
            "super::message::Op::self",
            "super::message::route::self",
            "super::message::route::single"
        ]
    );
    let module = ["front".to_string(), "resp".to_string()];
    let children = ["words".to_string()];
    assert_eq!(
        resolve(&module, &children, "super::serve::FrontEnd"),
        Some(vec!["front".into(), "serve".into(), "FrontEnd".into()])
    );
    assert_eq!(
        resolve(&module, &children, "words::local"),
        Some(vec![
            "front".into(),
            "resp".into(),
            "words".into(),
            "local".into()
        ])
    );
    assert_eq!(resolve(&module, &children, "crate::proto::resp"), None);
    assert_eq!(
        paths("use a::b;\nlet x = words::local(1);", &children),
        ["a::b", "words::local"]
    );
}

#[test]
fn the_server_import_graph_has_no_circle() {
    let graph = graph();
    assert!(graph.edges.len() > 10, "found the server's files");
    // Depth-first search with colours; a grey node reached again closes a circle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        colours: &mut BTreeMap<String, Colour>,
        stack: &mut Vec<String>,
    ) {
        colours.insert(node.to_string(), Colour::Grey);
        stack.push(node.to_string());
        for next in graph.edges.get(node).into_iter().flatten() {
            match colours.get(next).copied().unwrap_or(Colour::White) {
                Colour::Grey => {
                    let from = stack.iter().position(|name| name == next).unwrap_or(0);
                    panic!("import circle: {} -> {next}", stack[from..].join(" -> "));
                }
                Colour::White => visit(next, graph, colours, stack),
                Colour::Black => {}
            }
        }
        stack.pop();
        colours.insert(node.to_string(), Colour::Black);
    }
    let mut colours = BTreeMap::new();
    for node in graph.edges.keys() {
        if colours.get(node).copied().unwrap_or(Colour::White) == Colour::White {
            visit(node, &graph, &mut colours, &mut Vec::new());
        }
    }
    for (node, targets) in &graph.edges {
        println!(
            "{:>24} -> {}",
            if node.is_empty() { "(mod.rs)" } else { node },
            targets.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

#[test]
fn the_server_layers_depend_one_way() {
    let graph = graph();
    let layer_of = |module: &str| LAYERS.iter().position(|layer| layer.contains(&module));
    for layer in LAYERS {
        for module in *layer {
            assert!(
                graph.edges.contains_key(*module),
                "layer module {module} has no file (update LAYERS)"
            );
        }
    }
    for (node, targets) in &graph.edges {
        let Some(from) = layer_of(node) else { continue };
        for target in targets {
            if let Some(to) = layer_of(target) {
                assert!(
                    to <= from,
                    "{node} (layer {from}) imports {target} (layer {to}), a layer above it"
                );
            }
        }
    }
}

#[test]
fn nothing_imports_the_reactor() {
    let graph = graph();
    for (node, targets) in &graph.edges {
        let wiring = node.is_empty() || node == "reactor" || node.starts_with("reactor::");
        assert!(
            wiring
                || !targets
                    .iter()
                    .any(|target| target == "reactor" || target.starts_with("reactor::")),
            "{node} imports the reactor"
        );
    }
}

#[test]
fn lower_parts_know_nothing_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for part in ["proto", "store"] {
        let mut files = Vec::new();
        rust_files(&src.join(part), &mut files);
        assert!(!files.is_empty(), "src/{part} has files");
        for file in files {
            let source = strip_comments(&fs::read_to_string(&file).expect("read"));
            for above in ["crate::server", "crate::client", "crate::gateway"] {
                assert!(!source.contains(above), "{} names {above}", file.display());
            }
        }
    }
}
