//! Thrift clients over osquery's UNIX domain sockets.
//!
//! * [`Client`] (crate-private) talks to the osquery **extension manager**
//!   (the `--socket` path): register, ping, deregister.
//! * [`ExtensionClient`] (public, added by the vendored patch, see `PATCHES.md`)
//!   talks to an **extension's** own socket (`<socket>.<uuid>`) the way osqueryd
//!   does: `ping`, `call(registry, item, request)` and `shutdown`. It exists so
//!   benchmarks and tests can drive an extension without a real osqueryd.
//!
//! Both use osquery's wire format: binary protocol, unframed, over a UNIX stream.

use crate::_osquery as osquery;
use crate::_osquery::TExtensionSyncClient as _;
use std::io::{Error, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};

/// How often [`connect_with_retry`] re-tries a socket that is not there yet.
const CONNECT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Connect to a UNIX socket, retrying while it does not exist yet or refuses
/// connections (the peer has not bound/listened yet), for up to `timeout`.
///
/// `timeout == Duration::ZERO` means exactly one attempt (upstream behaviour).
/// Any other error (permission denied, path too long, ...) fails at once.
/// On timeout the last error's kind is kept and the message names the path.
pub(crate) fn connect_with_retry(path: &Path, timeout: Duration) -> Result<UnixStream, Error> {
    let start = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(e) if is_retryable(&e) && start.elapsed() < timeout => {
                let left = timeout.saturating_sub(start.elapsed());
                thread::sleep(
                    CONNECT_POLL_INTERVAL
                        .min(left)
                        .max(Duration::from_millis(1)),
                );
            }
            Err(e) if timeout.is_zero() => return Err(e),
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "could not connect to {} within {:?}: {e}",
                        path.display(),
                        timeout
                    ),
                ))
            }
        }
    }
}

fn is_retryable(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused)
}

/// Apply the same read and write timeout to a stream. `None` (or zero) blocks forever.
pub(crate) fn set_io_timeout(stream: &UnixStream, timeout: Option<Duration>) -> Result<(), Error> {
    let timeout = timeout.filter(|t| !t.is_zero());
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)
}

/// Client of the osquery extension manager (crate-private).
pub(crate) struct Client {
    client: osquery::ExtensionManagerSyncClient<
        TBinaryInputProtocol<UnixStream>,
        TBinaryOutputProtocol<UnixStream>,
    >,
    /// Kept to change socket timeouts after construction.
    stream: UnixStream,
}

impl Client {
    /// Connect to the manager socket, waiting up to `connect_timeout` for it to
    /// appear, and set `io_timeout` as read/write timeout on the connection.
    pub(crate) fn new(
        socket_path: &str,
        connect_timeout: Duration,
        io_timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let socket_tx = connect_with_retry(Path::new(socket_path), connect_timeout)?;
        set_io_timeout(&socket_tx, io_timeout)?;
        let socket_rx = socket_tx.try_clone()?;
        let stream = socket_tx.try_clone()?;

        let in_proto = TBinaryInputProtocol::new(socket_tx, true);
        let out_proto = TBinaryOutputProtocol::new(socket_rx, true);

        Ok(Client {
            client: osquery::ExtensionManagerSyncClient::new(in_proto, out_proto),
            stream,
        })
    }

    /// Change the read/write timeout of the manager connection.
    pub(crate) fn set_io_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        set_io_timeout(&self.stream, timeout)
    }
}

//
// Extension implements _osquery's Thrift API: trait TExtensionManagerSyncClient
//
impl osquery::TExtensionManagerSyncClient for Client {
    fn extensions(&mut self) -> thrift::Result<osquery::InternalExtensionList> {
        self.client.extensions()
    }

    fn options(&mut self) -> thrift::Result<osquery::InternalOptionList> {
        self.client.options()
    }

    fn register_extension(
        &mut self,
        info: osquery::InternalExtensionInfo,
        registry: osquery::ExtensionRegistry,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        self.client.register_extension(info, registry)
    }

    fn deregister_extension(
        &mut self,
        _uuid: osquery::ExtensionRouteUUID,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        self.client.deregister_extension(_uuid)
    }

    fn query(&mut self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        self.client.query(_sql)
    }

    fn get_query_columns(&mut self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        self.client.get_query_columns(_sql)
    }
}

//
// Extension implements _osquery's Thrift API: super-trait TExtensionSyncClient
//
impl osquery::TExtensionSyncClient for Client {
    fn ping(&mut self) -> thrift::Result<osquery::ExtensionStatus> {
        self.client.ping()
    }

    fn call(
        &mut self,
        registry: String,
        item: String,
        request: osquery::ExtensionPluginRequest,
    ) -> thrift::Result<osquery::ExtensionResponse> {
        // Upstream had `todo!()` here (a panic path); delegate instead.
        self.client.call(registry, item, request)
    }

    fn shutdown(&mut self) -> thrift::Result<()> {
        self.client.shutdown()
    }
}

type ExtensionSyncClient = osquery::ExtensionSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<UnixStream>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<UnixStream>>,
>;

/// A client for an extension's own socket (`<manager socket>.<uuid>`), speaking
/// to it exactly as osqueryd does. Use it in tests and benchmarks.
///
/// One `ExtensionClient` is one connection; the extension serves each
/// connection on its own worker thread, so open one client per thread to
/// issue concurrent calls (osqueryd itself opens a new connection per call).
///
/// ```no_run
/// use osquery_rust_ng::client::ExtensionClient;
/// use std::collections::BTreeMap;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut c = ExtensionClient::connect_with_timeout(
///     "/var/osquery/osquery.em.12345",
///     Duration::from_secs(5),
///     Some(Duration::from_secs(30)),
/// )?;
/// let req = BTreeMap::from([("action".to_string(), "generate".to_string())]);
/// let resp = c.call("table", "my_table", req)?;
/// println!("{:?}", resp.response);
/// # Ok(())
/// # }
/// ```
pub struct ExtensionClient {
    client: ExtensionSyncClient,
}

impl ExtensionClient {
    /// Connect once (no retry) with no read/write timeout.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::connect_with_timeout(path, Duration::ZERO, None)
    }

    /// Connect, retrying for up to `connect_timeout` while the socket does not
    /// exist or refuses connections (the extension registers before it binds its
    /// socket, so a caller that learned the uuid from registration can race it).
    /// `io_timeout` is the read/write timeout of each call (`None`: block forever).
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        connect_timeout: Duration,
        io_timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let stream = connect_with_retry(path.as_ref(), connect_timeout)?;
        set_io_timeout(&stream, io_timeout)?;
        let write_half = stream.try_clone()?;
        let cap = crate::server::TRANSPORT_BUFFER_BYTES;
        let in_proto =
            TBinaryInputProtocol::new(TBufferedReadTransport::with_capacity(cap, stream), true);
        let out_proto = TBinaryOutputProtocol::new(
            TBufferedWriteTransport::with_capacity(cap, write_half),
            true,
        );
        Ok(ExtensionClient {
            client: osquery::ExtensionSyncClient::new(in_proto, out_proto),
        })
    }

    /// `Extension.ping()`.
    pub fn ping(&mut self) -> thrift::Result<crate::ExtensionStatus> {
        self.client.ping()
    }

    /// `Extension.call(registry, item, request)`, e.g.
    /// `call("table", "my_table", {"action": "generate", "context": "{...}"})`.
    pub fn call(
        &mut self,
        registry: &str,
        item: &str,
        request: crate::ExtensionPluginRequest,
    ) -> thrift::Result<crate::ExtensionResponse> {
        self.client
            .call(registry.to_string(), item.to_string(), request)
    }

    /// `Extension.shutdown()`: what osqueryd sends when it exits.
    pub fn shutdown(&mut self) -> thrift::Result<()> {
        self.client.shutdown()
    }
}

/// A client for the extension manager's own socket (osqueryd's
/// `--extensions_socket`) that runs SQL through `ExtensionManager.query`
/// (vendored patch 10), as osquery-go's `ExtensionManagerClient.Query` does.
/// An extension uses it to read osquery's own tables; open one next to the
/// server's connection, which carries only register, ping and deregister.
pub struct ManagerClient {
    client: Client,
}

impl ManagerClient {
    /// Connect, retrying for up to `connect_timeout` while the socket does not
    /// exist or refuses connections; `io_timeout` bounds each call.
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        connect_timeout: Duration,
        io_timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let path = path
            .as_ref()
            .to_str()
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "socket path is not valid UTF-8"))?;
        Ok(ManagerClient {
            client: Client::new(path, connect_timeout, io_timeout)?,
        })
    }

    /// `ExtensionManager.query(sql)`: osquery runs the SQL and answers its
    /// rows as string maps (osquery's table format), with status code 0 on
    /// success and the SQL error message otherwise.
    pub fn query(&mut self, sql: &str) -> thrift::Result<crate::ExtensionResponse> {
        use crate::_osquery::TExtensionManagerSyncClient as _;
        self.client.query(sql.to_string())
    }

    /// `ExtensionManager.getQueryColumns(sql)`: the columns the SQL would
    /// return, one `{name: type}` map per column.
    pub fn query_columns(&mut self, sql: &str) -> thrift::Result<crate::ExtensionResponse> {
        use crate::_osquery::TExtensionManagerSyncClient as _;
        self.client.get_query_columns(sql.to_string())
    }
}
