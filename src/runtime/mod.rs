//! The container engine. Substrate talks to Docker Engine (or a Podman
//! socket) through bollard; everything Docker-specific lives in [`docker`].

pub mod docker;

pub use docker::DockerEngine;
