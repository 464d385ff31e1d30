//! Benchmark (not a test): `plan` over every example and a generated
//! 1,000-service app, in release mode. Prints the median of several runs per
//! app. Run: `cargo bench --bench plan`.

use deployment_manager::analyse::cost::Strategy;
use deployment_manager::analyse::fitness::Engine;
use deployment_manager::analyse::plan::{DEFAULT_LEVELS, plan};
use deployment_manager::catalog::Catalog;
use deployment_manager::describe::app::App;
use deployment_manager::describe::load_path;
use std::time::Instant;

mod common;
use common::big_app;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let catalog = Catalog::embedded();
    let engine = Engine::new(&catalog, Vec::new());
    let mut apps: Vec<(String, App)> = std::fs::read_dir("examples")
        .expect("run from the repository root")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("app.yaml").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                load_path(&p.join("app.yaml"), &[]).unwrap().app,
            )
        })
        .collect();
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    apps.push(("generated-1000-services".into(), big_app(1000)));
    println!(
        "plan: {} targets × {} user levels, release build",
        catalog.targets.len(),
        DEFAULT_LEVELS.len()
    );
    println!(
        "{:<26} {:>9} {:>6} {:>12} {:>12}",
        "app", "services", "runs", "median ms", "min ms"
    );
    for (name, app) in &apps {
        let runs = if app.services.len() > 100 { 5 } else { 30 };
        let times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let p = plan(&engine, app, &DEFAULT_LEVELS, Strategy::Rolling);
                std::hint::black_box(&p);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let min = times.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "{:<26} {:>9} {:>6} {:>12.2} {:>12.2}",
            name,
            app.services.len(),
            runs,
            median(times),
            min
        );
    }
}
