//! The catalog's `depends_on` check (DESIGN.md "Dependencies between
//! backends"): what only the winners together can tell.
//!
//! After resolution each id has one winning definition; [`crate::graph`]
//! is built from them. A cycle makes each file in it invalid like any
//! invalid edit: it keeps the definition that was in force before (hot
//! reload), and has none when it had none (start-up, a new file). Since
//! going back to older definitions can close another cycle, this repeats
//! until no cycle is left; files already put back whose old definitions
//! still form a cycle by themselves lose their definitions. An id no manifest defines and `healthy` on a
//! dependency without `health` are the dependent's
//! [`Entry::dependency_error`]: its definition stays in force, and Start is
//! refused with that line.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::{Catalog, Entry, Standing};
use crate::graph::Graph;
use crate::manifest::{Backend, ManifestError};

/// The definition that was in force for a file before this resolution.
pub type Previous<'a> = dyn Fn(&Path) -> Option<Arc<Backend>> + 'a;

/// `resolved` with the graph's verdicts applied, or `None` when no winner
/// has a `depends_on` (then there is nothing to check and `resolved` is in
/// force as it is: the common case costs no copy).
pub fn apply(resolved: &Catalog, previous: &Previous<'_>) -> Option<Catalog> {
    if resolved.winners().all(|(_, b)| b.depends_on.is_empty()) {
        return None;
    }
    let mut catalog = resolved.clone();
    let mut put_back: BTreeSet<usize> = BTreeSet::new();
    loop {
        let cycles = graph(&catalog).cycles();
        if cycles.is_empty() {
            break;
        }
        let members: Vec<usize> = (0..catalog.entries.len())
            .filter(|&i| winner(&catalog.entries[i]).is_some_and(|b| cycles.contains_key(&b.id)))
            .collect();
        // Put back each member not put back yet; only when every one already
        // was (the old definitions close the cycle themselves) are they
        // dropped. Each round puts one back or drops them: it ends.
        let fresh = members.iter().any(|i| !put_back.contains(i));
        for i in members {
            let entry = &mut catalog.entries[i];
            let Some(b) = winner(entry).cloned() else {
                continue;
            };
            if put_back.insert(i) {
                let cycle = &cycles[&b.id];
                // The file's own error (a parse error beside its last good
                // definition) stays; the cycle is added to it.
                entry.error = Some(match entry.error.take() {
                    Some(own) => format!("{own}; {cycle}"),
                    None => ManifestError::file(&entry.file, cycle.to_string()).to_string(),
                });
                match previous(&entry.file).filter(|old| old.id == b.id) {
                    Some(old) => entry.backend = Some(old),
                    None => drop_definition(entry),
                }
            } else if !fresh {
                drop_definition(entry);
            }
        }
    }
    let graph = graph(&catalog);
    for entry in &mut catalog.entries {
        let Some(id) = winner(entry).map(|b| b.id.clone()) else {
            continue;
        };
        let problems: Vec<String> = graph
            .problems(id.as_str())
            .iter()
            .map(ToString::to_string)
            .collect();
        entry.dependency_error = (!problems.is_empty()).then(|| problems.join("; "));
    }
    Some(catalog)
}

fn drop_definition(entry: &mut Entry) {
    entry.backend = None;
    entry.standing = Standing::Invalid;
}

fn winner(entry: &Entry) -> Option<&Arc<Backend>> {
    entry
        .backend
        .as_ref()
        .filter(|_| entry.standing == Standing::Winner)
}

fn graph(catalog: &Catalog) -> Graph {
    Graph::new(catalog.winners().map(|(_, b)| &**b))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::registry::{FileRead, resolve};

    fn def(id: &str, depends_on: &str) -> Arc<Backend> {
        let text = format!(
            "id: {id}\nname: N\nversion: 1.0.0\nexecutable: {{ linux: {{ path: x, sha256: {} }} }}\ndepends_on: {depends_on}\n",
            "0".repeat(64)
        );
        let file = PathBuf::from(format!("/b/{id}.yaml"));
        Arc::new(
            crate::manifest::parse(&file, text.as_bytes(), &PathBuf::from("/r").into()).unwrap(),
        )
    }

    fn catalog(defs: &[Arc<Backend>]) -> Catalog {
        let reads: Vec<FileRead> = defs
            .iter()
            .map(|b| FileRead {
                file: b.file.clone(),
                current: Ok(b.clone()),
                untrusted: None,
                last_good: Some(b.clone()),
                installed: false,
            })
            .collect();
        resolve(&reads, &Catalog::default(), &semver::Version::new(0, 1, 0))
    }

    /// `resolved` checked against `before` as the definitions in force.
    fn check(resolved: &Catalog, before: &Catalog) -> Option<Catalog> {
        apply(resolved, &|file| {
            before
                .entries
                .iter()
                .find(|e| e.file == file)
                .and_then(|e| e.backend.clone())
        })
    }

    /// File stem, winner?, the `depends_on` keys in force, error, dependency error.
    type Row = (String, bool, String, Option<String>, Option<String>);

    fn rows(c: &Catalog) -> Vec<Row> {
        c.entries
            .iter()
            .map(|e| {
                let stem = e.file.file_stem().unwrap().to_string_lossy().into_owned();
                let deps = e.backend.as_ref().map_or("-".to_owned(), |b| {
                    let ids: Vec<&str> = b.depends_on.keys().map(|k| k.as_str()).collect();
                    ids.join(",")
                });
                (
                    stem,
                    e.standing == Standing::Winner,
                    deps,
                    e.error.clone(),
                    e.dependency_error.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn nothing_to_check_without_depends_on() {
        let c = catalog(&[def("a", "{}"), def("b", "{}")]);
        assert!(check(&c, &Catalog::default()).is_none());
    }

    #[test]
    fn a_cycle_at_start_up_leaves_its_files_without_a_definition() {
        let c = catalog(&[
            def("a", "{ b: started }"),
            def("b", "{ a: running }"),
            def("c", "{ a: started }"),
        ]);
        let checked = check(&c, &Catalog::default()).unwrap();
        let cycle = |f: &str| Some(format!("/b/{f}.yaml: dependency cycle: a -> b -> a"));
        assert_eq!(
            rows(&checked),
            [
                ("a".into(), false, "-".into(), cycle("a"), None),
                ("b".into(), false, "-".into(), cycle("b"), None),
                (
                    "c".into(),
                    true,
                    "a".into(),
                    None,
                    Some("dependency a: no manifest defines this id".into())
                ),
            ]
        );
    }

    #[test]
    fn an_edit_that_closes_a_cycle_keeps_the_last_good_definitions() {
        let before = catalog(&[def("a", "{ b: started }"), def("b", "{}")]);
        let after = catalog(&[def("a", "{ b: started }"), def("b", "{ a: started }")]);
        let checked = check(&after, &before).unwrap();
        let cycle = |f: &str| Some(format!("/b/{f}.yaml: dependency cycle: a -> b -> a"));
        // a's file did not change and keeps its definition; b's edit is not
        // used: both files carry the error, as any file in a cycle does.
        assert_eq!(
            rows(&checked),
            [
                ("a".into(), true, "b".into(), cycle("a"), None),
                ("b".into(), true, "".into(), cycle("b"), None),
            ]
        );
        // The cycle opened again: the current texts count once more.
        let fixed = catalog(&[def("a", "{ b: started }"), def("b", "{ c: started }")]);
        let checked = check(&fixed, &checked).unwrap();
        assert_eq!(
            rows(&checked),
            [
                ("a".into(), true, "b".into(), None, None),
                (
                    "b".into(),
                    true,
                    "c".into(),
                    None,
                    Some("dependency c: no manifest defines this id".into())
                ),
            ]
        );
    }

    #[test]
    fn going_back_that_closes_another_cycle_goes_on_until_none_is_left() {
        // Before: a needs c. Now a and b need each other and c needs a: a's
        // old definition closes a -> c -> a, so c goes back too.
        let before = catalog(&[def("a", "{ c: started }"), def("b", "{}"), def("c", "{}")]);
        let after = catalog(&[
            def("a", "{ b: started }"),
            def("b", "{ a: started }"),
            def("c", "{ a: started }"),
        ]);
        let checked = check(&after, &before).unwrap();
        let in_force: Vec<(String, String)> = rows(&checked)
            .into_iter()
            .map(|(f, _, deps, _, _)| (f, deps))
            .collect();
        assert_eq!(
            in_force,
            [
                ("a".into(), "c".into()),
                ("b".into(), "".into()),
                ("c".into(), "".into())
            ]
        );
        assert!(checked.entries.iter().all(|e| e.error.is_some()));
        assert!(
            Graph::new(checked.winners().map(|(_, b)| &**b))
                .cycles()
                .is_empty()
        );
    }

    #[test]
    fn shown_error_joins_both() {
        let c = catalog(&[def("a", "{ x: started }")]);
        let mut checked = check(&c, &Catalog::default()).unwrap();
        let e = &mut checked.entries[0];
        assert_eq!(
            e.shown_error().as_deref(),
            Some("dependency x: no manifest defines this id")
        );
        e.error = Some("own".into());
        assert_eq!(
            e.shown_error().as_deref(),
            Some("own; dependency x: no manifest defines this id")
        );
    }
}
