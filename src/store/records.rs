//! The typed records kept in the store's trees (SPEC §6).
//!
//! These are the current (v2) formats. Formats of older schema versions are
//! frozen in their migration step under `migrations/`.

use serde::{Deserialize, Serialize};

use crate::ids::{CheckpointId, SpaceId};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Lifecycle of a running instance as the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Recorded before the container is created, so a crash mid-start leaves a
    /// record that reconciliation can match against Docker.
    Starting,
    Ready,
    Stopping,
    /// Ready, with its container paused while idle (SPEC §4 "Idle tiers").
    /// Appended last: older records decode unchanged.
    Paused,
}

/// One instance: a container serving one canonical viewspec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub service: String,
    pub container_id: Option<String>,
    pub container_name: String,
    /// Network address of the container on the namespace's bridge, once known.
    pub address: Option<String>,
    pub port: u16,
    pub state: InstanceState,
    /// Digest of the resolved definition it was started from.
    pub definition_digest: String,
    pub created_at: Millis,
    pub last_request_at: Millis,
}

/// Where a forked space was copied from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkedFrom {
    pub space: Option<SpaceId>,
    pub checkpoint: Option<CheckpointId>,
}

/// Who asked for a space; only spaces made by a URL redirect may be collected
/// when abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceOrigin {
    Api,
    Redirect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRecord {
    pub id: SpaceId,
    pub created_at: Millis,
    pub forked_from: Option<ForkedFrom>,
    pub name: Option<String>,
    pub size_hint: u64,
    pub origin: SpaceOrigin,
    pub deleted: bool,
}

/// How a tree was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyMethod {
    Reflink,
    Copy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub id: CheckpointId,
    pub space: SpaceId,
    /// The previous checkpoint of the same space: checkpoints form a chain.
    pub parent: Option<CheckpointId>,
    pub message: Option<String>,
    pub created_at: Millis,
    pub method: CopyMethod,
}

/// A space bound to one parameter slot of one viewspec (`notes;data=sp-…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub space: SpaceId,
    pub first_used_at: Millis,
}

/// Values of the `meta` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRecord {
    pub schema_version: u32,
    pub namespace: String,
    pub created_at: Millis,
}
