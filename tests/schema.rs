//! The published JSON Schemas are current and accept what the tool accepts.

use deployment_manager::describe::app::App;
use std::process::Command;

fn schema_of(which: &str) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(["schema", which])
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn published_schemas_are_current() {
    for which in ["app", "manifest"] {
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("schemas/{which}.schema.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            committed,
            schema_of(which),
            "schemas/{which}.schema.json is stale: regenerate with `deployment-manager schema {which}`"
        );
    }
}

#[test]
fn every_example_validates_against_the_app_schema() {
    let schema = schema_of("app");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for entry in std::fs::read_dir("examples").unwrap() {
        let path = entry.unwrap().path().join("app.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        // And the typed reader agrees.
        let _: App = serde_saphyr::from_str(&text).unwrap();
    }
    let bad = serde_json::json!({"apiVersion": "deployment-manager/v1", "kind": "App", "name": "x", "services": {"a": {"image": "i", "helth": {}}}});
    assert!(
        !validator.is_valid(&bad),
        "unknown keys are rejected by the schema too"
    );
}
