//! The deploy lock on Kubernetes: a Lease per profile in the app's
//! namespace. Creating it is atomic in the API server; its annotations say
//! who holds it, so waiting and breaking work as on Docker hosts.

use super::Kube;
use crate::deploy::lock::{Holder, LockStore};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};

const PREFIX: &str = "deployment-manager/lock-";

pub struct LeaseLock<'a, 'k> {
    pub k: &'a Kube<'k>,
    pub namespace: &'a str,
}

impl LeaseLock<'_, '_> {
    fn name(&self) -> String {
        format!("deployment-manager-{}", self.k.profile)
    }

    fn api(&self) -> Api<Lease> {
        Api::namespaced(self.k.client.clone(), self.namespace)
    }
}

impl LockStore for LeaseLock<'_, '_> {
    fn place(&self) -> String {
        format!("Lease/{} in {}", self.name(), self.namespace)
    }

    async fn create(&self, holder: &Holder) -> Result<bool, String> {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}});
        self.k.apply(&ns).await?;
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": self.name(), "annotations": holder.to_labels(PREFIX)},
            "spec": {"holderIdentity": format!("{} pid {}", holder.actor, holder.pid)}
        }))
        .map_err(|e| e.to_string())?;
        match self.api().create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(format!("lock: {e}")),
        }
    }

    async fn holder(&self) -> Result<Option<Holder>, String> {
        match self.api().get_opt(&self.name()).await {
            Ok(Some(l)) => {
                let a = l.metadata.annotations.unwrap_or_default();
                Ok(Some(Holder::from_labels(PREFIX, |k| a.get(k))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(format!("cannot read the deploy lock: {e}")),
        }
    }

    async fn remove(&self) -> Result<(), String> {
        self.api()
            .delete(&self.name(), &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot let go of the deploy lock: {e}"))
    }
}
