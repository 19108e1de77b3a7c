//! [`V1System`] behind the backend-neutral container traits of [`crate::cow`].

use super::{lock, V1System};
use crate::error::{Error, ErrorKind, Result};

#[async_trait::async_trait]
impl crate::cow::ProcessHost for V1System {
    async fn create_process(
        &self,
        config: &serde_json::Value,
    ) -> Result<Box<dyn crate::cow::Process>> {
        Ok(Box::new(V1System::create_process(self, config).await?))
    }

    fn os(&self) -> crate::cow::Os {
        crate::cow::Os::from_runtime_os_type(&lock(&self.inner.cached).1)
            .unwrap_or(crate::cow::Os::Windows)
    }

    fn is_oci(&self) -> bool {
        let c = lock(&self.inner.cached);
        c.1 == "linux" && c.0 == "container"
    }
}

#[async_trait::async_trait]
impl crate::cow::Container for V1System {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn properties(&self, types: &[&str]) -> Result<serde_json::Value> {
        V1System::properties(self, &serde_json::json!({ "PropertyTypes": types })).await
    }

    async fn properties_v2(&self, types: &[&str]) -> Result<serde_json::Value> {
        V1System::properties(self, &serde_json::json!({ "PropertyTypes": types })).await
    }

    async fn start(&self) -> Result<()> {
        V1System::start(self).await
    }

    async fn shutdown(&self) -> Result<()> {
        V1System::shutdown(self).await
    }

    async fn terminate(&self) -> Result<()> {
        V1System::terminate(self).await
    }

    async fn wait(&self) -> Result<()> {
        V1System::wait(self).await
    }

    async fn modify(&self, config: &serde_json::Value) -> Result<()> {
        V1System::modify(self, config).await
    }

    async fn set_cpu_group_affinities(
        &self,
        _affinities: &[crate::cow::GroupAffinity],
    ) -> Result<()> {
        Err(Error::op(
            "hcs::System::SetCPUGroupAffinities",
            ErrorKind::NotImplemented,
        )
        .with_system(&self.inner.id))
    }

    async fn close(&self) -> Result<()> {
        V1System::close(self).await
    }
}
