//! Re-embeds the panel bundle whenever `scripts/build-site.sh` rebuilds it: the derive in
//! `src/lib.rs` reads `target/site/pkg` at compile time, and cargo only knows to recompile this
//! crate when told that directory changed. Without a bundle yet (a fresh checkout, lints run
//! before the bundle is built) the crate still compiles, with no files.

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let pkg = std::path::Path::new(&manifest).join("../../target/site/pkg");
    // A directory is scanned as a whole (any file added, removed or changed in it); a missing
    // one makes cargo re-run this script on every build until it exists.
    println!("cargo:rerun-if-changed={}", pkg.display());
    println!("cargo:rerun-if-changed=build.rs");
}
