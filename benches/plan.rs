//! Benchmark (not a test): `plan` over every example and a generated
//! 1,000-service app, in release mode. Prints the median of several runs per
//! app. Run: `cargo bench --bench plan`.

use deployment_manager::analyse::cost::Strategy;
use deployment_manager::analyse::fitness::Engine;
use deployment_manager::analyse::plan::{DEFAULT_LEVELS, plan};
use deployment_manager::catalog::Catalog;
use std::time::Instant;

mod common;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let catalog = Catalog::embedded();
    let engine = Engine::new(&catalog, Vec::new());
    let apps = common::apps();
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
