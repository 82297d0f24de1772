//! The `layerforge` command.
//!
//! Every command is implemented in Python (`python -m layerforge`), which this binary execs
//! with the same arguments (same process id, so signals and exit statuses are Python's).
//! One case is answered here first: `layerforge push` run again, with the same command line,
//! after a push that ended well and left a receipt (python/layerforge/registry/receipt.py),
//! on a plain-HTTP registry (loopback, or `--insecure`) that lets it look without
//! credentials. A receipt counts only when no one else could have written it and it names
//! this push (see `receipt`). When the receipt still holds (same layout index and blobs,
//! every tag and referrer still in place), the push would send nothing: this takes a few
//! milliseconds here, against ~0.1 s of interpreter start-up, and prints the lines the
//! receipt holds. In every other case, including any doubt, any error and any unexpected
//! reply, Python does the push and reports errors (a receipt ignored as not the user's own
//! included). `LAYERFORGE_PUSH_FAST_PATH=0` turns the native answer off.
//!
//! `layerforge nix-layer --job DOCUMENT` of store paths (the argv of a plan's store-path job,
//! one Pants process per layer or batch of small layers) is built here through
//! layerforge-core, without Python's start-up; any other argv, and any doubt, goes to Python
//! (see `nix_layer`, and `layer_job` for the document).

mod files;
mod http;
mod layer_dir;
mod layer_job;
mod nix_layer;
mod publish_record;
mod python;
mod receipt;
mod repush;

use std::ffi::OsString;

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "push") && fast_path_enabled() {
        if let Some(report) = repush::already_current(&args[1..]) {
            report.print();
            return;
        }
    }
    if args.first().is_some_and(|a| a == "nix-layer") && enabled("LAYERFORGE_NATIVE_NIX_LAYER") {
        if let Some(code) = nix_layer::run(&args[1..]) {
            std::process::exit(code);
        }
    }
    python::exec(&args);
}

fn fast_path_enabled() -> bool {
    enabled("LAYERFORGE_PUSH_FAST_PATH")
}

/// A native answer is on unless its variable is `0`.
fn enabled(variable: &str) -> bool {
    std::env::var_os(variable).map_or(true, |v| v != "0")
}
