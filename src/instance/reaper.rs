//! Idle reaping: an instance with no request in flight and no upgraded
//! connection open for its `idle_timeout` is stopped and removed; the next
//! request starts it again. Spaces are never touched.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::stop::StopReason;
use super::Activator;

/// Checks for idle instances every `tick` until `stop` changes.
pub async fn run(activator: Arc<Activator>, tick: Duration, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                // Concurrently: each stop waits for its container's grace period.
                let idle = activator.idle_instances();
                let stops = idle
                    .iter()
                    .map(|i| activator.stop_for(&i.key, StopReason::Idle, Some(&i.container_id)));
                futures_util::future::join_all(stops).await;
                activator.pause_idle().await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Follows the engine's container events: a container of ours that dies is
/// forgotten at once, so the next request starts a new one without first
/// failing to connect. Reconnects with a backoff while the engine is down.
pub async fn follow_events(activator: Arc<Activator>, mut stop: watch::Receiver<bool>) {
    use crate::runtime::ContainerEvent;
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(200);
    loop {
        match activator.engine().events().await {
            Ok(mut events) => loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(ContainerEvent::Gone { id }) => {
                            backoff = Duration::from_millis(200);
                            activator.container_gone(&id).await;
                        }
                        None => break,
                    },
                    _ = stop.changed() => return,
                }
            },
            Err(e) => tracing::debug!(error = %e, "cannot follow docker events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
