//! The module layering of issue 16: every `crate::` path in production code (tests left out)
//! points to a module in a lower layer, so there are no module cycles and no arrow from a lower
//! stage to a higher one; the two imaging views of perception do not import each other. This
//! reads the `crate::` paths of `src/`, so a new upward import fails here, naming the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers from the ground floor up: a module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &[
        "frame", "geometry", "limits", "mailbox", "shutdown", "metrics", "threads",
    ],
    &["calib"],
    &["source"],
    &["perception"],
    &["registration"],
    &["planning"],
    &["overlay"],
    &["session"],
    &["config"],
    &["server"],
    &["record"],
    &["pipeline"],
    &["eval"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments and without `#[cfg(test)]` items (brace-matched).
fn production_code(text: &str) -> String {
    let no_comments: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = no_comments.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        // The item ends at the `;` of a one-line item or the brace closing its block.
        let open = after.find('{');
        let semi = after.find(';');
        let end = match (open, semi) {
            (Some(o), Some(s)) if s < o => s + 1,
            (Some(o), _) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, c) in after[o..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn leading_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules named by `crate::` paths in `code`, `crate::{a, b::c}` groups included.
fn crate_targets(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        match after.strip_prefix('{') {
            Some(group) => {
                // Split the group's own items at its top-level commas.
                let (mut depth, mut start) = (0usize, 0usize);
                for (k, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            found.insert(leading_ident(&group[start..k]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.insert(leading_ident(&group[start..k]));
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => {
                found.insert(leading_ident(after));
            }
        }
        rest = after;
    }
    found.remove("");
    found
}

fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

#[test]
fn r16_no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges = 0usize;
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` has no layer",
                file.display()
            ));
            continue;
        };
        let code = production_code(&std::fs::read_to_string(file).expect("read"));
        for target in crate_targets(&code) {
            if target == module {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => edges += 1,
                Some(_) => problems.push(format!(
                    "{}: `{module}` uses `crate::{target}`, which is not below it",
                    file.display()
                )),
                None => {} // a crate-level item re-exported from lib.rs, e.g. `crate::Detection`
            }
        }
        // The two imaging views stand side by side.
        let rel = file.strip_prefix(&src).expect("under src");
        let rel = rel.to_string_lossy();
        if rel.starts_with("perception/rig") && code.contains("dermoscope::") {
            problems.push(format!("{rel}: the rig view uses the dermoscope view"));
        }
        if rel.starts_with("perception/dermoscope") && code.contains("rig::") {
            problems.push(format!("{rel}: the dermoscope view uses the rig view"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        edges > 50,
        "only {edges} cross-module paths found: is the reader broken?"
    );
}

#[test]
fn the_layer_reader_sees_groups_and_skips_tests() {
    let code = production_code(
        "use crate::{frame::Frame, planning::{Design, Zone}};\n// crate::server in a comment\n\
         fn f() { crate::geometry::polygon_area(&[]); }\n#[cfg(test)]\nmod tests { use crate::cli; }\n",
    );
    let found = crate_targets(&code);
    let want: BTreeSet<String> = ["frame", "geometry", "planning"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
}
