//! YAML output for generators: values are built as JSON (ordered maps) and
//! printed by serde-saphyr, which quotes anything ambiguous (`"8080"`, `"yes"`).

use serde_json::Value;

pub fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).expect("JSON values always serialise")
}

/// Several documents in one file, as `kubectl apply -f` reads them.
pub fn documents(header: &str, docs: &[Value]) -> String {
    let mut out = header.to_string();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&to_yaml(d));
    }
    out
}
