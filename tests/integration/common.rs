//! Running the `pgtrail` binary and reading its JSON Lines output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `pgtrail` with `args`, returns (exit code, parsed stdout lines, stderr).
pub fn pgtrail(args: &[&str]) -> (i32, Vec<Value>, String) {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run pgtrail");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), events, stderr)
}

pub fn parse_file(path: &Path) -> (i32, Vec<Value>, String) {
    pgtrail(&["parse", path.to_str().expect("utf-8 path")])
}

pub fn str_field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}
