#![forbid(unsafe_code)]

// Restrict access to osquery API to osquery-rust
// Users of osquery-rust are not allowed to access osquery API directly
pub(crate) mod _osquery;
/// Thrift clients; [`client::ExtensionClient`] is public (vendored patch 4).
pub mod client;
mod listener;
pub mod plugin;
/// Streamed table answers: [`rows::RowWriter`] (vendored patch 9).
pub mod rows;
pub(crate) mod server;
mod util;

pub use crate::server::{
    Registration, RegistrationRefused, Server, ServerStopHandle, DEFAULT_EXTENSION_VERSION,
    DEFAULT_LISTENER_THREADS, DEFAULT_MANAGER_IO_TIMEOUT,
};

/// The `thrift` crate this library is built on, re-exported so callers can
/// name `thrift::Error` (the error type of `Server::run`) without adding
/// their own dependency (vendored patch).
pub use thrift;

// Re-exports
pub type ExtensionResponse = _osquery::osquery::ExtensionResponse;
pub type ExtensionPluginRequest = _osquery::osquery::ExtensionPluginRequest;
pub type ExtensionPluginResponse = _osquery::osquery::ExtensionPluginResponse;
pub type ExtensionStatus = _osquery::osquery::ExtensionStatus;

///
/// Expose all structures required in virtually any osquery extension
///
/// ```
/// use osquery_rust_ng::prelude::*;
/// ```
pub mod prelude {
    pub use crate::client::{ExtensionClient, ManagerClient};
    pub use crate::rows::RowWriter;
    pub use crate::Server;
    pub use crate::ServerStopHandle;
    pub use crate::{
        ExtensionPluginRequest, ExtensionPluginResponse, ExtensionResponse, ExtensionStatus,
    };
    pub use crate::{Registration, RegistrationRefused};
}

#[cfg(test)]
mod server_tests;

#[cfg(test)]
mod patch_tests;
