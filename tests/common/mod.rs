//! Shared by the integration tests that call external validators.

pub mod grpc;
pub mod load;
pub mod registry;
pub mod server;

use std::path::PathBuf;

/// The example apps, one per seed project.
#[allow(dead_code)]
pub const EXAMPLES: [&str; 5] = [
    "automation-agents",
    "coding-platform",
    "minsky-sessions",
    "picker-wheel",
    "will-it-compile",
];

/// An example's app.yaml, loaded as the CLI loads it.
#[allow(dead_code)]
pub fn example(name: &str) -> deployment_manager::describe::app::App {
    deployment_manager::describe::load_path(
        std::path::Path::new(&format!("examples/{name}/app.yaml")),
        &[],
    )
    .unwrap()
    .app
}

/// The `bin` folder of the validators' virtual environment, which
/// scripts/test.sh creates (`DM_VALIDATORS_VENV`, default under ~/.cache).
/// Missing validators fail the test; they are never skipped.
#[allow(dead_code)]
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

/// Runs a command and returns its output; panics with it on failure.
#[allow(dead_code)]
pub fn sh(cmd: &mut std::process::Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A build context of the test server (`build_test_image` builds the
/// binary): its binary and a FROM-scratch Dockerfile in `dir`.
#[allow(dead_code)]
pub fn build_context(dir: &std::path::Path) {
    let server = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/dm-testserver-target/x86_64-unknown-linux-gnu/release/dm-testserver");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(server, dir.join("server")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY server /server\nUSER 10001:10001\nENTRYPOINT [\"/server\"]\n",
    )
    .unwrap();
}

/// Real database servers (Debian's PostgreSQL 15 and Redis 7 in images
/// built FROM scratch by testkit/db-images.sh).
#[allow(dead_code)]
pub const POSTGRES_IMAGE: &str = "dm-e2e/postgres:15";
#[allow(dead_code)]
pub const REDIS_IMAGE: &str = "dm-e2e/redis:7";
/// Debian's MariaDB 10.11, built the same way.
#[allow(dead_code)]
pub const MARIADB_IMAGE: &str = "dm-e2e/mariadb:10.11";

/// SQL run as root in a MariaDB container (the password, if any, in
/// `MYSQL_PWD`), once its server answers (up to 30 s).
#[allow(dead_code)]
pub fn mariadb_sql(
    container: &str,
    password: &str,
) -> impl Fn(&str) -> std::process::Output + use<> {
    let (container, password) = (container.to_string(), password.to_string());
    let sql = move |sql: &str| {
        std::process::Command::new("docker")
            .args(["exec", "-e", &format!("MYSQL_PWD={password}"), &container])
            .args(["mariadb", "-uroot", "-N", "-B", "-e", sql])
            .output()
            .unwrap()
    };
    for _ in 0..60 {
        if sql("select 1").status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    sql
}

/// Builds [`POSTGRES_IMAGE`], [`REDIS_IMAGE`] and [`MARIADB_IMAGE`] once
/// per test binary.
#[allow(dead_code)]
pub fn build_db_images() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        sh(std::process::Command::new("bash").args([
            "testkit/db-images.sh",
            POSTGRES_IMAGE,
            REDIS_IMAGE,
            MARIADB_IMAGE,
        ]));
    });
}

/// Builds the static test server (testkit/testserver) and a FROM-scratch
/// image holding it. Images cannot be pulled on these machines.
#[allow(dead_code)]
pub fn build_test_image(tag: &str) {
    use std::process::Command;
    let info = Command::new("docker")
        .arg("info")
        .output()
        .expect("docker CLI");
    assert!(
        info.status.success(),
        "Docker Engine is required (scripts/test.sh installs and starts it): {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let target = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/dm-testserver-target");
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir("testkit/testserver")
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
            ])
            .arg(&target),
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(
        target.join("x86_64-unknown-linux-gnu/release/dm-testserver"),
        ctx.path().join("server"),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY server /server\nUSER 10001:10001\nENTRYPOINT [\"/server\"]\n",
    )
    .unwrap();
    sh(Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(ctx.path()));
}
