#![no_main]
//! The app.yaml reader must never panic, whatever the bytes, and anything it
//! accepts must survive analysis.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(app) = deployment_manager::describe::load::parse_app("fuzz.yaml", text)
    {
        let catalog = deployment_manager::catalog::Catalog::embedded();
        let engine = deployment_manager::analyse::fitness::Engine::new(&catalog, Vec::new());
        let _ = engine.report(&app, None, None);
    }
});
