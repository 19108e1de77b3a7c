//! Container handles over the bridge (the reference's `internal/gcs/container.go`).

use std::time::Duration;

use bridge::header::MessageType;
use bridge::hresult::Hresult;
use bridge::json::AnyInString;
use bridge::messages::{
    ContainerConfig, CreateRequest, CreateResponse, GetPropertiesRequest, GetPropertiesResponse,
    ModifySettingRequest, ModifySettingsRequest, NotificationType, ProcessParameters, Properties,
    PropertyQuery, PropertyType, RequestBase, ResponseBase,
};
use tokio::sync::watch;

use crate::client::{BridgeClient, ContainerState};
use crate::error::{Error, Result};
use crate::process::GcsProcess;

/// A container in the guest.
pub struct GcsContainer {
    client: BridgeClient,
    id: String,
    state: watch::Receiver<ContainerState>,
}

impl std::fmt::Debug for GcsContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsContainer")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for GcsContainer {
    fn drop(&mut self) {
        self.client.unregister_container(&self.id);
    }
}

impl GcsContainer {
    /// Creates a container: registers its exit watcher, then sends Create.
    pub async fn create(client: &BridgeClient, id: &str, config: ContainerConfig) -> Result<Self> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("empty container id".into()));
        }
        let state = client.register_container(id)?;
        let request = CreateRequest {
            base: RequestBase::new(id),
            container_config: AnyInString(config),
        };
        if let Err(e) = client
            .call::<_, CreateResponse>(MessageType::Create, &request, None)
            .await
        {
            client.unregister_container(id);
            return Err(e);
        }
        Ok(Self {
            client: client.clone(),
            id: id.to_owned(),
            state,
        })
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bridge this container lives on.
    pub fn client(&self) -> &BridgeClient {
        &self.client
    }

    async fn simple(&self, t: MessageType, timeout: Option<Duration>) -> Result<()> {
        self.client
            .call::<_, ResponseBase>(t, &RequestBase::new(&self.id), timeout)
            .await
            .map(|_| ())
    }

    /// Sends Start (a no-op in the Linux GCS; the init process starts with its
    /// ExecuteProcess).
    pub async fn start(&self) -> Result<()> {
        self.simple(MessageType::Start, None).await
    }

    /// Starts the init process (ExecuteProcess without `OciProcess`).
    pub async fn start_init(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<GcsProcess> {
        let params = ProcessParameters {
            create_std_in_pipe: stdin,
            create_std_out_pipe: stdout,
            create_std_err_pipe: stderr,
            ..Default::default()
        };
        GcsProcess::spawn(&self.client, &self.id, params).await
    }

    /// Executes a process described by `params` (with `OciProcess` for an exec).
    pub async fn exec(&self, params: ProcessParameters) -> Result<GcsProcess> {
        GcsProcess::spawn(&self.client, &self.id, params).await
    }

    async fn shutdown_with(&self, t: MessageType) -> Result<()> {
        let timeout = self.client.config().shutdown_timeout;
        match self.simple(t, Some(timeout)).await {
            // The container is already gone: that is what was asked for.
            Err(e) if e.hresult() == Some(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND) => Ok(()),
            r => r,
        }
    }

    /// ShutdownGraceful (SIGTERM to init). Does not wait for the exit.
    pub async fn shutdown(&self) -> Result<()> {
        self.shutdown_with(MessageType::ShutdownGraceful).await
    }

    /// ShutdownForced (SIGKILL to init). Does not wait for the exit.
    pub async fn terminate(&self) -> Result<()> {
        self.shutdown_with(MessageType::ShutdownForced).await
    }

    /// Waits for the exit notification.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting only.
    pub async fn wait(&self) -> Result<NotificationType> {
        let mut rx = self.state.clone();
        loop {
            match rx.borrow_and_update().clone() {
                ContainerState::Running => {}
                ContainerState::Exited(t) => return Ok(t),
                ContainerState::BridgeClosed(reason) => return Err(Error::BridgeClosed(reason)),
            }
            if rx.changed().await.is_err() {
                return Err(Error::BridgeClosed(
                    self.client
                        .closed_reason()
                        .unwrap_or_else(|| "container watcher dropped".into()),
                ));
            }
        }
    }

    /// [`GcsContainer::wait`] bounded by `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<NotificationType> {
        tokio::time::timeout(timeout, self.wait())
            .await
            .map_err(|_| Error::Timeout {
                op: format!("wait for container {}", self.id),
                after: timeout,
            })?
    }

    /// The exit notification if it has arrived.
    pub fn exited(&self) -> Option<NotificationType> {
        match &*self.state.borrow() {
            ContainerState::Exited(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// Queries properties (GetProperties).
    pub async fn properties(&self, types: Vec<PropertyType>) -> Result<Properties> {
        let request = GetPropertiesRequest {
            base: RequestBase::new(&self.id),
            query: AnyInString(PropertyQuery {
                property_types: types,
            }),
        };
        let resp: GetPropertiesResponse = self
            .client
            .call(MessageType::GetProperties, &request, None)
            .await?;
        Ok(resp.properties.0)
    }

    /// The pids of the container's processes (guest root pid namespace).
    pub async fn process_list(&self) -> Result<Vec<u32>> {
        Ok(self
            .properties(vec![PropertyType::ProcessList])
            .await?
            .process_list
            .into_iter()
            .map(|p| p.process_id)
            .collect())
    }

    /// Sends a ModifySettings for this container (ContainerConstraints).
    pub async fn modify(&self, request: ModifySettingRequest) -> Result<()> {
        modify_settings(&self.client, &self.id, request).await
    }

    /// DeleteContainerState: the guest removes the runtime state, bundle and scratch.
    pub async fn delete_state(&self) -> Result<()> {
        self.simple(MessageType::DeleteContainerState, None).await
    }
}

/// Sends a ModifySettings request (the null id targets the utility VM).
pub async fn modify_settings(
    client: &BridgeClient,
    container_id: &str,
    request: ModifySettingRequest,
) -> Result<()> {
    let body = ModifySettingsRequest {
        base: RequestBase::new(container_id),
        request,
    };
    client
        .call::<_, ResponseBase>(MessageType::ModifySettings, &body, None)
        .await
        .map(|_| ())
}
