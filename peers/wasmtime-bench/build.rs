// The benchmark reports the Wasmtime it was built with: the version
// Cargo.lock pins, read here so that the report cannot drift from it.
use std::fs;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").expect("Cargo.lock is committed beside Cargo.toml");
    let mut lines = lock.lines();
    let mut version = None;
    while let Some(line) = lines.next() {
        if line == "name = \"wasmtime\"" {
            version = lines
                .next()
                .and_then(|v| v.strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
            break;
        }
    }
    let version = version.expect("Cargo.lock names no wasmtime package");
    println!("cargo:rustc-env=WASMTIME_VERSION={version}");
}
