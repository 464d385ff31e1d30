//! One parsed Kubernetes document, shared by the importer
//! (`kubernetes.rs`), its call inference (`kubernetes_calls.rs`) and its
//! key accounting (`kubernetes_keys.rs`).

use serde_json::Value;

/// One parsed document with the file it came from.
pub(super) struct Doc {
    pub(super) file: String,
    pub(super) value: Value,
}

impl Doc {
    pub(super) fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    pub(super) fn name(&self) -> String {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("unnamed")
            .to_string()
    }
    /// A workload's pod template (a CronJob's sits under its job template).
    pub(super) fn pod_template(&self) -> Option<&Value> {
        let path = match self.kind() {
            "CronJob" => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        };
        self.value.pointer(path)
    }
    pub(super) fn at(&self) -> String {
        format!("{}:{}/{}", self.file, self.kind(), self.name())
    }
}

pub(super) fn selects(service: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let Some(sel) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}
