use clap::crate_name;
use std::collections::HashMap;
use std::fmt;
use std::io::Error;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use strum::VariantNames;

use crate::_osquery as osquery;
use crate::_osquery::{TExtensionManagerSyncClient, TExtensionSyncClient};
use crate::client::Client;
use crate::listener::{Listener, StreamOptions};
use crate::plugin::{OsqueryPlugin, Registry};
use crate::util::OptionToThriftResult;

/// Transport buffer size (vendored patch 7): thrift's default is 4 KiB, so
/// a 1,000-row `generate` answer (~1 MB) took hundreds of write calls.
pub const TRANSPORT_BUFFER_BYTES: usize = 64 * 1024;

const DEFAULT_PING_INTERVAL: Duration = Duration::from_millis(500);

/// Default read/write timeout on the connection to the extension manager
/// (vendored patch 5). osquery core uses 10 s for its own extension pings.
pub const DEFAULT_MANAGER_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Version sent at registration unless [`Server::with_version`] is used (upstream value).
pub const DEFAULT_EXTENSION_VERSION: &str = "1.0";

/// Worker threads serving the extension socket (upstream value). Each accepted
/// connection occupies one worker until the peer closes it.
pub const DEFAULT_LISTENER_THREADS: usize = 10;

/// How long shutdown waits for the extension socket's threads (vendored
/// patch 8); a worker in the middle of an answer finishes it first.
const LISTENER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest single sleep in the ping loop, so shutdown requests are noticed
/// promptly even with a long ping interval.
const SHUTDOWN_POLL_SLICE: Duration = Duration::from_millis(50);

/// What osquery assigned at registration (vendored patch 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The route uuid returned by `registerExtension`.
    pub uuid: i64,
    /// The extension's own socket, `<manager socket>.<uuid>`.
    pub listen_path: String,
}

/// The extension manager answered `registerExtension` with a non-zero status
/// code (vendored patch 2), e.g. code 1 "Duplicate extension registered".
///
/// `run()` returns it as `thrift::Error::User`; use
/// [`RegistrationRefused::from_thrift_error`] to recognise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRefused {
    /// Extension name that was refused.
    pub name: String,
    /// `ExtensionStatus.code` returned by the manager.
    pub code: i32,
    /// `ExtensionStatus.message` returned by the manager ("" if none).
    pub message: String,
}

impl RegistrationRefused {
    /// Downcast a `run()` error to a refused registration, if it is one.
    pub fn from_thrift_error(err: &thrift::Error) -> Option<&RegistrationRefused> {
        match err {
            thrift::Error::User(e) => e.downcast_ref::<RegistrationRefused>(),
            _ => None,
        }
    }
}

impl fmt::Display for RegistrationRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "osquery refused to register extension '{}' (status {}): {}",
            self.name, self.code, self.message
        )
    }
}

impl std::error::Error for RegistrationRefused {}

/// Handle that allows stopping the server from another thread.
///
/// This handle can be cloned and shared across threads. It provides a way for
/// external code to request a graceful shutdown of the server.
///
/// # Thread Safety
///
/// `ServerStopHandle` is `Clone + Send + Sync` and can be safely shared between
/// threads. Multiple calls to `stop()` are safe and idempotent.
///
/// # Example
///
/// ```ignore
/// let mut server = Server::new(None, "/path/to/socket")?;
/// let handle = server.get_stop_handle();
///
/// // In another thread:
/// std::thread::spawn(move || {
///     // ... some condition ...
///     handle.stop();
/// });
///
/// server.run()?; // Will exit when stop() is called
/// ```
#[derive(Clone)]
pub struct ServerStopHandle {
    shutdown_flag: Arc<AtomicBool>,
    registration: Arc<OnceLock<Registration>>,
}

impl ServerStopHandle {
    /// Request the server to stop.
    ///
    /// This method is idempotent - multiple calls are safe.
    /// The server will exit its run loop on the next iteration.
    pub fn stop(&self) {
        self.shutdown_flag.store(true, Ordering::Release);
    }

    /// Check if the server is still running.
    ///
    /// Returns `true` if the server has not been requested to stop,
    /// `false` if `stop()` has been called.
    pub fn is_running(&self) -> bool {
        !self.shutdown_flag.load(Ordering::Acquire)
    }

    /// The uuid and listener path osquery assigned, once `run()` has
    /// registered successfully; `None` before that (vendored patch 5).
    pub fn registration(&self) -> Option<Registration> {
        self.registration.get().cloned()
    }
}

pub struct Server<P: OsqueryPlugin + Clone + Send + Sync + 'static> {
    name: String,
    socket_path: String,
    client: Client,
    plugins: Vec<P>,
    ping_interval: Duration,
    uuid: Option<osquery::ExtensionRouteUUID>,
    // Used to ensure tests wait until the server is actually started
    started: bool,
    shutdown_flag: Arc<AtomicBool>,
    /// The extension socket's accept loop and workers (vendored patch 8).
    listener: Option<Listener>,
    /// Path of the extension socket, once registered.
    listen_path: Option<String>,
    /// Where streamed answers spill (vendored patch 9).
    stream: StreamOptions,
    // --- vendored patches (see PATCHES.md) ---
    /// Version / SDK versions sent in `InternalExtensionInfo`.
    version: String,
    sdk_version: String,
    min_sdk_version: String,
    /// Read/write timeout on the manager connection (`None`: block forever).
    io_timeout: Option<Duration>,
    listener_threads: usize,
    /// Set once registration succeeded; shared with stop handles.
    registration: Arc<OnceLock<Registration>>,
    /// False once a call to the manager failed: skip the (blocking) deregister.
    manager_ok: bool,
}

impl<P: OsqueryPlugin + Clone + Send + 'static> Server<P> {
    /// Connect to the extension manager socket (one attempt, as upstream).
    ///
    /// The connection gets [`DEFAULT_MANAGER_IO_TIMEOUT`] as read/write timeout
    /// (vendored patch 5; upstream had none).
    pub fn new(name: Option<&str>, socket_path: &str) -> Result<Self, Error> {
        Self::new_with_timeout(name, socket_path, Duration::ZERO)
    }

    /// Like [`Server::new`], but waits up to `timeout` for the manager socket to
    /// appear and accept connections (vendored patch 3). osqueryd passes
    /// `--timeout <seconds>` to autoloaded extensions for this purpose.
    ///
    /// `Duration::ZERO` means a single attempt. On timeout the error keeps the
    /// last connect error's kind (usually `NotFound` or `ConnectionRefused`).
    pub fn new_with_timeout(
        name: Option<&str>,
        socket_path: &str,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let name = name.unwrap_or(crate_name!());

        let client = Client::new(socket_path, timeout, Some(DEFAULT_MANAGER_IO_TIMEOUT))?;

        Ok(Server {
            name: name.to_string(),
            socket_path: socket_path.to_string(),
            client,
            plugins: Vec::new(),
            ping_interval: DEFAULT_PING_INTERVAL,
            uuid: None,
            started: false,
            shutdown_flag: Arc::new(AtomicBool::new(false)),
            listener: None,
            listen_path: None,
            stream: StreamOptions {
                spool_dir: None,
                memory_limit: crate::rows::DEFAULT_SPOOL_MEMORY_BYTES,
            },
            version: DEFAULT_EXTENSION_VERSION.to_string(),
            sdk_version: "Unknown".to_string(),
            min_sdk_version: "Unknown".to_string(),
            io_timeout: Some(DEFAULT_MANAGER_IO_TIMEOUT),
            listener_threads: DEFAULT_LISTENER_THREADS,
            registration: Arc::new(OnceLock::new()),
            manager_ok: true,
        })
    }

    /// Convenience for `Server::new(name, socket_path)?.with_version(version)`
    /// (vendored patch 1).
    pub fn new_with_version(
        name: Option<&str>,
        version: &str,
        socket_path: &str,
    ) -> Result<Self, Error> {
        Ok(Self::new(name, socket_path)?.with_version(version))
    }

    /// Version sent as `InternalExtensionInfo.version` at registration and shown
    /// in osquery's `osquery_extensions.version` (vendored patch 1; upstream
    /// always sent "1.0").
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_string();
        self
    }

    /// `InternalExtensionInfo.sdk_version` (upstream: "Unknown"). osquery core
    /// compares it with `versionAtLeast`; an empty or non-numeric value passes.
    pub fn with_sdk_version(mut self, sdk_version: &str) -> Self {
        self.sdk_version = sdk_version.to_string();
        self
    }

    /// `InternalExtensionInfo.min_sdk_version` (upstream: "Unknown").
    pub fn with_min_sdk_version(mut self, min_sdk_version: &str) -> Self {
        self.min_sdk_version = min_sdk_version.to_string();
        self
    }

    /// Interval between pings to the manager (upstream: fixed 500 ms). Map
    /// osqueryd's `--interval <seconds>` here if wanted. Shutdown requests are
    /// still noticed within ~50 ms whatever the interval.
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Read/write timeout on the manager connection, applied by `run()`
    /// (register, every ping, deregister). `None` or zero blocks forever
    /// (upstream behaviour). Default: [`DEFAULT_MANAGER_IO_TIMEOUT`]. A ping
    /// that times out ends `run()` like any other ping failure.
    pub fn with_io_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// Number of worker threads serving the extension socket (upstream: 10).
    /// Values below 1 are raised to 1.
    pub fn with_listener_threads(mut self, threads: usize) -> Self {
        self.listener_threads = threads.max(1);
        self
    }

    /// A private directory where a table answer larger than the spool's
    /// memory limit spills, in an unlinked file (vendored patch 9). Without
    /// one, streamed answers stay in memory (encoded once, compactly).
    pub fn with_spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.stream.spool_dir = Some(dir.into());
        self
    }

    /// Encoded bytes of one answer kept in memory before spilling (default
    /// [`crate::rows::DEFAULT_SPOOL_MEMORY_BYTES`]).
    pub fn with_spool_memory_limit(mut self, bytes: usize) -> Self {
        self.stream.memory_limit = bytes;
        self
    }

    /// The uuid osquery assigned, once registered.
    pub fn uuid(&self) -> Option<i64> {
        self.uuid
    }

    /// The extension's own socket path (`<socket>.<uuid>`), once registered.
    pub fn listen_path(&self) -> Option<&str> {
        self.listen_path.as_deref()
    }

    ///
    /// Registers a plugin, something which implements the OsqueryPlugin trait.
    /// Consumes the plugin.
    ///
    pub fn register_plugin(&mut self, plugin: P) -> &Self {
        self.plugins.push(plugin);
        self
    }

    /// Run the server, blocking until shutdown is requested.
    ///
    /// This method starts the server, registers with osquery, and enters a loop
    /// that pings osquery periodically. The loop exits when shutdown is triggered
    /// by any of:
    /// - osquery calling the shutdown RPC
    /// - Connection to osquery being lost
    /// - `stop()` being called from another thread
    ///
    /// For signal handling (SIGTERM/SIGINT), use `run_with_signal_handling()` instead.
    pub fn run(&mut self) -> thrift::Result<()> {
        self.start()?;
        self.run_loop();
        self.shutdown_and_cleanup();
        Ok(())
    }

    /// Run the server with signal handling enabled (Unix only).
    ///
    /// This method registers handlers for SIGTERM and SIGINT that will trigger
    /// graceful shutdown. Use this instead of `run()` if you want the server to
    /// respond to OS signals (e.g., systemd sending SIGTERM, or Ctrl+C sending SIGINT).
    ///
    /// The loop exits when shutdown is triggered by any of:
    /// - SIGTERM or SIGINT signal received
    /// - osquery calling the shutdown RPC
    /// - Connection to osquery being lost
    /// - `stop()` being called from another thread
    ///
    /// # Platform Support
    ///
    /// This method is only available on Unix platforms. For Windows, use `run()`
    /// and implement your own signal handling.
    #[cfg(unix)]
    pub fn run_with_signal_handling(&mut self) -> thrift::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;

        // Register signal handlers that set our shutdown flag.
        // signal_hook::flag::register atomically sets the bool when signal received.
        // Errors are rare (e.g., invalid signal number) and non-fatal - signals
        // just won't trigger shutdown, but other shutdown mechanisms still work.
        if let Err(e) = flag::register(SIGINT, self.shutdown_flag.clone()) {
            log::warn!("Failed to register SIGINT handler: {e}");
        }
        if let Err(e) = flag::register(SIGTERM, self.shutdown_flag.clone()) {
            log::warn!("Failed to register SIGTERM handler: {e}");
        }

        self.start()?;
        self.run_loop();
        self.shutdown_and_cleanup();
        Ok(())
    }

    /// The main ping loop. Exits when should_shutdown() returns true.
    fn run_loop(&mut self) {
        while !self.should_shutdown() {
            if let Err(e) = self.client.ping() {
                log::warn!("Ping failed, initiating shutdown: {}", describe(&e));
                // The connection is dead or desynchronised (e.g. a timed-out
                // read): do not try to deregister over it.
                self.manager_ok = false;
                self.request_shutdown();
                break;
            }
            self.sleep_unless_shutdown(self.ping_interval);
        }
    }

    /// Sleep for `total`, in slices, returning early once shutdown is requested.
    fn sleep_unless_shutdown(&self, total: Duration) {
        let start = Instant::now();
        while !self.should_shutdown() {
            let left = total.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(SHUTDOWN_POLL_SLICE));
        }
    }

    /// Common shutdown logic: wake listener, join thread, deregister, notify plugins, cleanup socket.
    fn shutdown_and_cleanup(&mut self) {
        log::info!("Shutting down");

        self.join_listener_thread();

        // Deregister from osquery (best-effort, allows faster cleanup than timeout)
        if let (Some(uuid), true) = (self.uuid, self.manager_ok) {
            if let Err(e) = self.client.deregister_extension(uuid) {
                log::warn!("Failed to deregister from osquery: {e}");
            }
        }

        self.notify_plugins_shutdown();
        self.cleanup_socket();
    }

    /// Stop the extension socket's threads and join them (vendored patch 8:
    /// upstream could not stop thrift's accept loop and orphaned it).
    fn join_listener_thread(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        log::debug!("Stopping the extension socket's threads");
        if !listener.stop(LISTENER_STOP_TIMEOUT) {
            log::warn!(
                "An extension socket thread was still answering after {LISTENER_STOP_TIMEOUT:?}"
            );
        }
    }

    fn start(&mut self) -> thrift::Result<()> {
        self.client.set_io_timeout(self.io_timeout)?;

        let stat = self.client.register_extension(
            osquery::InternalExtensionInfo {
                name: Some(self.name.clone()),
                version: Some(self.version.clone()),
                sdk_version: Some(self.sdk_version.clone()),
                min_sdk_version: Some(self.min_sdk_version.clone()),
            },
            self.generate_registry()?,
        )?;

        let code = stat.code.unwrap_or(0);
        let message = stat.message.unwrap_or_else(|| "No message".to_string());
        log::info!(
            "Status {} registering extension {} ({}): {}",
            code,
            self.name,
            stat.uuid.unwrap_or(0),
            message
        );
        // Vendored patch 2: upstream only logged a refusal and kept pinging
        // while serving nothing. Fail like osquery-go does.
        if code != 0 {
            return Err(thrift::Error::User(Box::new(RegistrationRefused {
                name: self.name.clone(),
                code,
                message,
            })));
        }

        self.uuid = stat.uuid;
        let listen_path = format!("{}.{}", self.socket_path, self.uuid.unwrap_or(0));
        remove_stale_socket(&listen_path);

        let handler = Handler::new(&self.plugins, self.shutdown_flag.clone())?;
        // Vendored patches 5 and 8: bind here, so a failed bind (stale file,
        // path too long, permissions) fails run() instead of leaving the
        // extension registered and serving nothing.
        let listener = match Listener::start(
            &listen_path,
            handler,
            self.listener_threads,
            self.stream.clone(),
            self.shutdown_flag.clone(),
        ) {
            Ok(l) => l,
            Err(e) => {
                // thrift's ApplicationError drops its message in Display; use User.
                let err = thrift::Error::User(Box::new(Error::other(format!(
                    "listening on {listen_path}: {e}"
                ))));
                if let Some(uuid) = self.uuid {
                    if let Err(e) = self.client.deregister_extension(uuid) {
                        log::warn!("Failed to deregister after listener failure: {e}");
                    }
                }
                self.uuid = None;
                return Err(err);
            }
        };
        self.listen_path = Some(listen_path.clone());
        self.listener = Some(listener);
        self.started = true;
        let _ = self.registration.set(Registration {
            uuid: self.uuid.unwrap_or(0),
            listen_path,
        });

        Ok(())
    }

    fn generate_registry(&self) -> thrift::Result<osquery::ExtensionRegistry> {
        let mut registry = osquery::ExtensionRegistry::new();

        for var in Registry::VARIANTS {
            registry.insert((*var).to_string(), osquery::ExtensionRouteTable::new());
        }

        for plugin in self.plugins.iter() {
            registry
                .get_mut(plugin.registry().to_string().as_str())
                .ok_or_thrift_err(|| format!("Failed to register plugin {}", plugin.name()))?
                .insert(plugin.name(), plugin.routes());
        }
        Ok(registry)
    }

    /// Check if shutdown has been requested.
    fn should_shutdown(&self) -> bool {
        self.shutdown_flag.load(Ordering::Acquire)
    }

    /// Request shutdown by setting the shutdown flag.
    fn request_shutdown(&self) {
        self.shutdown_flag.store(true, Ordering::Release);
    }

    /// Notify all registered plugins that shutdown is occurring.
    /// Uses catch_unwind to ensure all plugins are notified even if one panics.
    fn notify_plugins_shutdown(&self) {
        log::debug!("Notifying {} plugins of shutdown", self.plugins.len());
        for plugin in &self.plugins {
            let plugin_name = plugin.name();
            if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                plugin.shutdown();
            })) {
                log::error!("Plugin '{plugin_name}' panicked during shutdown: {e:?}");
            }
        }
    }

    /// Clean up the socket file created during start().
    /// Logs errors (except NotFound, which is expected if socket was already cleaned up).
    fn cleanup_socket(&self) {
        let Some(uuid) = self.uuid else {
            log::debug!("No socket to clean up (uuid not set)");
            return;
        };

        let socket_path = format!("{}.{}", self.socket_path, uuid);
        log::debug!("Cleaning up socket: {socket_path}");

        if let Err(e) = std::fs::remove_file(&socket_path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("Failed to remove socket file {socket_path}: {e}");
            }
        }
    }

    /// Get a handle that can be used to stop the server from another thread.
    ///
    /// The returned handle can be cloned and shared across threads. Calling
    /// `stop()` on the handle will cause the server's `run()` method to exit
    /// gracefully on the next iteration.
    pub fn get_stop_handle(&self) -> ServerStopHandle {
        ServerStopHandle {
            shutdown_flag: self.shutdown_flag.clone(),
            registration: self.registration.clone(),
        }
    }

    /// Request the server to stop.
    ///
    /// This is a convenience method equivalent to calling `stop()` on a
    /// `ServerStopHandle`. The server will exit its `run()` loop on the next
    /// iteration.
    pub fn stop(&self) {
        self.request_shutdown();
    }

    /// Check if the server is still running.
    ///
    /// Returns `true` if the server has not been requested to stop,
    /// `false` if `stop()` has been called or shutdown has been triggered
    /// by another mechanism (e.g., osquery shutdown RPC, connection loss).
    pub fn is_running(&self) -> bool {
        !self.should_shutdown()
    }
}

pub(crate) struct Handler<P: OsqueryPlugin + Clone> {
    registry: HashMap<String, HashMap<String, P>>,
    shutdown_flag: Arc<AtomicBool>,
}

impl<P: OsqueryPlugin + Clone> Handler<P> {
    /// The plugin serving `registry`/`item`, or the application error
    /// upstream answered with.
    pub(crate) fn plugin(&self, registry: &str, item: &str) -> thrift::Result<&P> {
        self.registry
            .get(registry)
            .ok_or_thrift_err(|| format!("Failed to get registry:{registry} from registries"))?
            .get(item)
            .ok_or_thrift_err(|| format!("Failed to item:{item} from registry:{registry}"))
    }

    pub(crate) fn new(plugins: &[P], shutdown_flag: Arc<AtomicBool>) -> thrift::Result<Self> {
        let mut reg: HashMap<String, HashMap<String, P>> = HashMap::new();
        for var in Registry::VARIANTS {
            reg.insert((*var).to_string(), HashMap::new());
        }

        for plugin in plugins.iter() {
            reg.get_mut(plugin.registry().to_string().as_str())
                .ok_or_thrift_err(|| format!("Failed to register plugin {}", plugin.name()))?
                .insert(plugin.name(), plugin.clone());
        }

        Ok(Handler {
            registry: reg,
            shutdown_flag,
        })
    }
}

impl<P: OsqueryPlugin + Clone> osquery::ExtensionSyncHandler for Handler<P> {
    fn handle_ping(&self) -> thrift::Result<osquery::ExtensionStatus> {
        // Vendored patch 6: explicit status 0 "OK" like osquery-go and
        // osquery core (upstream left every field unset).
        Ok(osquery::ExtensionStatus {
            code: Some(0),
            message: Some("OK".to_string()),
            uuid: None,
        })
    }

    fn handle_call(
        &self,
        registry: String,
        item: String,
        request: osquery::ExtensionPluginRequest,
    ) -> thrift::Result<osquery::ExtensionResponse> {
        log::trace!("Registry: {registry}");
        log::trace!("Item: {item}");
        log::trace!("Request: {request:?}");

        let plugin = self.plugin(&registry, &item)?;
        Ok(plugin.handle_call(request))
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        log::debug!("Shutdown RPC received from osquery");
        self.shutdown_flag.store(true, Ordering::Release);
        Ok(())
    }
}

impl<P: OsqueryPlugin + Clone> osquery::ExtensionManagerSyncHandler for Handler<P> {
    fn handle_extensions(&self) -> thrift::Result<osquery::InternalExtensionList> {
        // Extension management not supported - return empty list
        Ok(osquery::InternalExtensionList::new())
    }

    fn handle_options(&self) -> thrift::Result<osquery::InternalOptionList> {
        // Extension options not supported - return empty list
        Ok(osquery::InternalOptionList::new())
    }

    fn handle_register_extension(
        &self,
        _info: osquery::InternalExtensionInfo,
        _registry: osquery::ExtensionRegistry,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        // Nested extension registration not supported
        Ok(osquery::ExtensionStatus {
            code: Some(1),
            message: Some("Extension registration not supported".to_string()),
            uuid: None,
        })
    }

    fn handle_deregister_extension(
        &self,
        _uuid: osquery::ExtensionRouteUUID,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        // Nested extension deregistration not supported
        Ok(osquery::ExtensionStatus {
            code: Some(1),
            message: Some("Extension deregistration not supported".to_string()),
            uuid: None,
        })
    }

    fn handle_query(&self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        // Query execution not supported
        Ok(osquery::ExtensionResponse::new(
            osquery::ExtensionStatus {
                code: Some(1),
                message: Some("Query execution not supported".to_string()),
                uuid: None,
            },
            vec![],
        ))
    }

    fn handle_get_query_columns(&self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        // Query column introspection not supported
        Ok(osquery::ExtensionResponse::new(
            osquery::ExtensionStatus {
                code: Some(1),
                message: Some("Query column introspection not supported".to_string()),
                uuid: None,
            },
            vec![],
        ))
    }
}

/// Remove a leftover socket file at `path` that nobody listens on (e.g. from an
/// extension that crashed with the same uuid), so bind() can succeed. A live
/// socket is left alone: bind() then fails and `run()` reports it.
fn remove_stale_socket(path: &str) {
    let p = Path::new(path);
    if !p.exists() {
        return;
    }
    match std::os::unix::net::UnixStream::connect(p) {
        Ok(_) => log::warn!("Socket {path} is live; another process is listening on it"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            log::info!("Removing stale socket {path}");
            if let Err(e) = std::fs::remove_file(p) {
                log::warn!("Failed to remove stale socket {path}: {e}");
            }
        }
        Err(e) => log::debug!("Not removing {path}: {e}"),
    }
}

/// `thrift::Error`'s `Display` prints only the error kind ("transport error");
/// add the message it carries (e.g. the io::Error text).
fn describe(e: &thrift::Error) -> String {
    let message = match e {
        thrift::Error::Transport(t) => &t.message,
        thrift::Error::Protocol(p) => &p.message,
        thrift::Error::Application(a) => &a.message,
        thrift::Error::User(u) => return u.to_string(),
    };
    if message.is_empty() {
        e.to_string()
    } else {
        format!("{e}: {message}")
    }
}
