//! Shared by the integration tests that call external validators.

use std::path::PathBuf;

/// The `bin` folder of the validators' virtual environment, which
/// scripts/test.sh creates (`DM_VALIDATORS_VENV`, default under ~/.cache).
/// Missing validators fail the test; they are never skipped.
pub fn venv_bin() -> PathBuf {
    let dir = std::env::var("DM_VALIDATORS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/deployment-manager-venv")
        });
    let bin = dir.join("bin");
    assert!(
        bin.join("kubernetes-validate").is_file() && bin.join("docker-compose").is_file(),
        "validators missing in {}: run `bash scripts/test.sh`, which installs them",
        dir.display()
    );
    bin
}
