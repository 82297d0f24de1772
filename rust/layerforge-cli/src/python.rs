//! Hand the command to the Python implementation: `exec python -m layerforge ARGS`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The interpreter the package is installed for: `$LAYERFORGE_PYTHON`, else the `python3`
/// (or `python`) next to this binary (a virtualenv's `bin/`, where pip puts both), else
/// `python3` on `PATH`.
fn interpreter() -> PathBuf {
    if let Some(p) = std::env::var_os("LAYERFORGE_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        for name in ["python3", "python"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("python3")
}

/// Replace this process with Python running the command; returns only if that fails.
pub fn exec(args: &[OsString]) -> ! {
    let python = interpreter();
    let err = Command::new(&python)
        .arg("-m")
        .arg("layerforge")
        .args(args)
        .exec();
    eprintln!(
        "layerforge: error: cannot run the Python part of layerforge with '{}': {err}",
        python.display()
    );
    std::process::exit(127);
}
