//! Embeds the message grammars: writes `$OUT_DIR/grammar_sources.rs`, a
//! `SOURCES` table of (path, `include_str!`) pairs for `grammars/details.toml`
//! and every `grammars/messages/*.toml`, sorted by path. A new grammar file is
//! picked up without touching Rust code.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let messages = root.join("grammars/messages");
    println!("cargo::rerun-if-changed=grammars/messages");
    println!("cargo::rerun-if-changed=grammars/details.toml");

    let mut files: Vec<PathBuf> = match fs::read_dir(&messages) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let details = root.join("grammars/details.toml");
    if details.exists() {
        files.push(details);
    }

    let mut code = String::from(
        "/// The grammar files embedded at build time: (path relative to the crate, text).\n\
         pub(crate) static SOURCES: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap_or(path);
        code.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            slash(rel),
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    fs::write(out.join("grammar_sources.rs"), code).expect("write grammar_sources.rs");
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
