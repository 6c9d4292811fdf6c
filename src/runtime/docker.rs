//! Docker Engine through bollard: connecting (local socket or `DOCKER_HOST`),
//! API version negotiation, and liveness.

use std::time::Duration;

/// A handle on the Docker Engine. Cheap to clone.
#[derive(Clone)]
pub struct DockerEngine {
    client: bollard::Docker,
}

impl DockerEngine {
    /// Connects lazily: no request is made until the engine is used, so a
    /// daemon can start while Docker is down and recover when it comes back.
    pub fn connect() -> Result<Self, String> {
        let client = bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    /// Settles on an API version both sides speak (Engine 20.10 speaks 1.41).
    pub async fn negotiate(self) -> Self {
        match self.client.clone().negotiate_version().await {
            Ok(client) => Self { client },
            Err(e) => {
                tracing::warn!(error = %e, "docker API version negotiation failed; keeping the default");
                self
            }
        }
    }

    /// `Ok` when the engine answers a ping within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.client.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }
}
