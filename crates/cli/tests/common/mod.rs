//! What the tests of the `dcrs` binary share: the example dataset and running `dcrs`
//! as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example dataset of the repository.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dataset")
}

/// `dcrs --database URL ARGS…`, as the operator `test-operator`.
pub fn dcrs(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcrs"))
        .arg("--database")
        .arg(url)
        .args(args)
        .env_remove("DCRS_DATABASE_URL")
        .env("USER", "test-operator")
        .output()
        .expect("dcrs runs")
}
