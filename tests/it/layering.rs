//! Issue #10: no import cycles between berth's top-level modules. Each
//! module's files (`src/m.rs`, `src/m/**`) are read, the `crate::X` paths
//! outside comments taken as its dependencies, and the graph searched for a
//! cycle, which is printed if found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn sources(path: &Path, out: &mut String) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push_str(&std::fs::read_to_string(path).unwrap());
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || ["lib", "main"].contains(&name) {
            continue;
        }
        let mut text = String::new();
        sources(&path, &mut text);
        sources(&src.join(name), &mut text);
        let mut deps = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let dep: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !dep.is_empty() && dep != name {
                    deps.insert(dep);
                }
            }
        }
        modules.insert(name.to_owned(), deps);
    }
    modules
}

/// A cycle through `at`, if `at` reaches back onto `path`.
fn cycle(
    g: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == at) {
        let mut found = path[i..].to_vec();
        found.push(at.to_owned());
        return Some(found);
    }
    if !done.insert(at.to_owned()) {
        return None;
    }
    path.push(at.to_owned());
    for dep in g.get(at).into_iter().flatten() {
        if let Some(found) = cycle(g, dep, path, done) {
            return Some(found);
        }
    }
    path.pop();
    None
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let g = graph();
    // The graph is read at all: the launcher's assembly (`embed`, which
    // `berth run`'s `launcher` uses) imports the folder watcher.
    assert!(
        g.contains_key("embed") && g["embed"].contains("watch") && g["launcher"].contains("embed"),
        "{g:?}"
    );
    let mut done = BTreeSet::new();
    for module in g.keys() {
        if let Some(found) = cycle(&g, module, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", found.join(" -> "));
        }
    }
}
