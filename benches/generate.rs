//! Benchmark (not a test): generating every target for every example and
//! for a generated 1,000-service app, release mode, median of several runs.
//! Blocked targets are timed too (they stop at the fitness gate).
//! Run: `cargo bench --bench generate`.

use deployment_manager::catalog::Catalog;
use deployment_manager::render::render;
use std::time::Instant;

mod common;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let catalog = Catalog::embedded();
    let apps = common::apps();
    println!(
        "generate: every target ({}) per app, release build",
        catalog.targets.len()
    );
    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>6} {:>14} {:>12}",
        "app", "services", "written", "blocked", "runs", "median ms/all", "files bytes"
    );
    for (name, app) in &apps {
        let runs = if app.services.len() > 100 { 3 } else { 15 };
        let mut times = Vec::new();
        let (mut ok, mut blocked, mut bytes) = (0, 0, 0);
        for i in 0..runs {
            let t = Instant::now();
            for target in &catalog.targets {
                match render(&catalog, app, &target.id) {
                    Ok(files) => {
                        if i == 0 {
                            ok += 1;
                            bytes += files.iter().map(|f| f.content.len()).sum::<usize>();
                        }
                        std::hint::black_box(files);
                    }
                    Err(_) if i == 0 => blocked += 1,
                    Err(_) => {}
                }
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "{:<26} {:>9} {:>8} {:>8} {:>6} {:>14.2} {:>12}",
            name,
            app.services.len(),
            ok,
            blocked,
            runs,
            median(times),
            bytes
        );
    }
}
