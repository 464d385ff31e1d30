#![no_main]
//! The Kubernetes importer must never panic, and what it produces must read
//! back as a valid app description.
use deployment_manager::describe::kubernetes::import_text;
use deployment_manager::describe::load::parse_app;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(import) = import_text("fuzz.yaml", text, "fuzz")
    {
        let json = serde_json::to_string(&import.app).expect("an app serialises");
        if let Err(e) = parse_app("imported.yaml", &json) {
            panic!("import produced an invalid app: {e:?}\n{json}");
        }
    }
});
