//! The extension's own socket (vendored patch 8): an accept loop and a
//! fixed pool of workers that can be stopped, and the dispatcher that
//! answers `call` with a streamed response (vendored patch 9).
//!
//! Upstream served the socket with thrift's `TServer::listen_uds`, whose
//! accept loop never returns: at every shutdown the listener thread was
//! orphaned ("did not exit within 100ms"), and worker threads blocked on an
//! idle connection were never ended. Here the accept loop checks the
//! shutdown flag after every accept (shutdown wakes it with one
//! connection), open connections are shut down so their workers return,
//! and every thread is joined.

use crate::_osquery as osquery;
use crate::_osquery::{TExtensionManagerProcessFunctions, TExtensionProcessFunctions};
use crate::plugin::OsqueryPlugin;
use crate::rows::RowWriter;
use crate::server::Handler;
use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TListIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TSerializable, TStructIdentifier, TType,
};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};
use thrift::TransportErrorKind;
use thrift::{ApplicationError, ApplicationErrorKind};

/// Open connections, so shutdown can end the reads their workers block in.
type Open = Arc<Mutex<HashMap<u64, UnixStream>>>;

/// A running listener: the accept thread and its workers.
pub(crate) struct Listener {
    path: String,
    shutdown: Arc<AtomicBool>,
    open: Open,
    accept: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

/// How the dispatcher answers `call`.
#[derive(Clone)]
pub(crate) struct StreamOptions {
    /// Where streamed answers spill past `memory_limit` (None: memory only).
    pub spool_dir: Option<PathBuf>,
    pub memory_limit: usize,
}

impl Listener {
    /// Bind `path` and start serving with `threads` workers. A bind failure
    /// (path too long, a live socket, permissions) is returned here.
    pub(crate) fn start<P: OsqueryPlugin + Clone + 'static>(
        path: &str,
        handler: Handler<P>,
        threads: usize,
        stream: StreamOptions,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<Listener> {
        let listener = UnixListener::bind(path)?;
        let dispatcher = Arc::new(Dispatcher { handler, stream });
        let open: Open = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::channel::<(u64, UnixStream)>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let (rx, dispatcher, open) = (rx.clone(), dispatcher.clone(), open.clone());
            workers.push(
                thread::Builder::new()
                    .name(format!("osquery-ext-worker-{i}"))
                    .spawn(move || loop {
                        let next = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok((id, conn)) = next else { return };
                        serve_connection(&*dispatcher, conn);
                        if let Ok(mut o) = open.lock() {
                            o.remove(&id);
                        }
                    })?,
            );
        }
        let accept = {
            let (shutdown, open) = (shutdown.clone(), open.clone());
            thread::Builder::new()
                .name("osquery-ext-accept".into())
                .spawn(move || {
                    let next_id = AtomicU64::new(0);
                    for conn in listener.incoming() {
                        if shutdown.load(Ordering::Acquire) {
                            break;
                        }
                        match conn {
                            Ok(conn) => {
                                let id = next_id.fetch_add(1, Ordering::Relaxed);
                                if let (Ok(clone), Ok(mut o)) = (conn.try_clone(), open.lock()) {
                                    o.insert(id, clone);
                                }
                                if tx.send((id, conn)).is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                log::warn!("accept failed: {e}");
                                thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    // Dropping `tx` ends the workers once they are idle.
                })?
        };
        Ok(Listener {
            path: path.to_string(),
            shutdown,
            open,
            accept: Some(accept),
            workers,
        })
    }

    /// Stop accepting, end open connections and join every thread, waiting
    /// at most `timeout` (a worker in the middle of a long answer finishes
    /// it first). Returns false if a thread was still running then.
    pub(crate) fn stop(mut self, timeout: Duration) -> bool {
        self.shutdown.store(true, Ordering::Release);
        // Wake the accept loop: it checks the flag after every accept.
        let _ = UnixStream::connect(&self.path);
        let deadline = Instant::now() + timeout;
        let mut all = true;
        if let Some(a) = self.accept.take() {
            all &= join_by(a, deadline);
        }
        // Connections still open (osqueryd keeps none between calls, but a
        // client may): end them so their workers return.
        if let Ok(o) = self.open.lock() {
            for conn in o.values() {
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
        for w in self.workers.drain(..) {
            all &= join_by(w, deadline);
        }
        all
    }
}

fn join_by(t: JoinHandle<()>, deadline: Instant) -> bool {
    while !t.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    if t.join().is_err() {
        log::warn!("an extension socket thread panicked");
    }
    true
}

/// Serve one connection until the peer closes it (osqueryd opens one per call).
fn serve_connection<P: OsqueryPlugin + Clone>(dispatcher: &Dispatcher<P>, conn: UnixStream) {
    let read_half = match conn.try_clone() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("extension connection: {e}");
            return;
        }
    };
    let cap = crate::server::TRANSPORT_BUFFER_BYTES;
    let mut i_prot =
        TBinaryInputProtocol::new(TBufferedReadTransport::with_capacity(cap, read_half), true);
    let mut o_prot =
        TBinaryOutputProtocol::new(TBufferedWriteTransport::with_capacity(cap, conn), true);
    loop {
        match dispatcher.process(&mut i_prot, &mut o_prot) {
            Ok(()) => {}
            Err(thrift::Error::Transport(ref t)) if t.kind == TransportErrorKind::EndOfFile => {
                return
            }
            Err(e) => {
                log::debug!("extension connection ended: {e:?}");
                return;
            }
        }
    }
}

/// osquery's Extension and ExtensionManager services, with `call` answered
/// by [`process_call`] and every other method by the generated code.
pub(crate) struct Dispatcher<P: OsqueryPlugin + Clone> {
    handler: Handler<P>,
    stream: StreamOptions,
}

impl<P: OsqueryPlugin + Clone> Dispatcher<P> {
    fn process(
        &self,
        i_prot: &mut dyn TInputProtocol,
        o_prot: &mut dyn TOutputProtocol,
    ) -> thrift::Result<()> {
        let ident = i_prot.read_message_begin()?;
        let seq = ident.sequence_number;
        let h = &self.handler;
        let res = match &*ident.name {
            "call" => self.process_call(seq, i_prot, o_prot),
            "ping" => TExtensionProcessFunctions::process_ping(h, seq, i_prot, o_prot),
            "shutdown" => TExtensionProcessFunctions::process_shutdown(h, seq, i_prot, o_prot),
            "extensions" => {
                TExtensionManagerProcessFunctions::process_extensions(h, seq, i_prot, o_prot)
            }
            "options" => TExtensionManagerProcessFunctions::process_options(h, seq, i_prot, o_prot),
            "registerExtension" => TExtensionManagerProcessFunctions::process_register_extension(
                h, seq, i_prot, o_prot,
            ),
            "deregisterExtension" => {
                TExtensionManagerProcessFunctions::process_deregister_extension(
                    h, seq, i_prot, o_prot,
                )
            }
            "query" => TExtensionManagerProcessFunctions::process_query(h, seq, i_prot, o_prot),
            "getQueryColumns" => {
                TExtensionManagerProcessFunctions::process_get_query_columns(h, seq, i_prot, o_prot)
            }
            method => Err(thrift::Error::Application(ApplicationError::new(
                ApplicationErrorKind::UnknownMethod,
                format!("unknown method {method}"),
            ))),
        };
        thrift::server::handle_process_result(&ident, res, o_prot)
    }

    /// `call(registry, item, request)`: a plugin that streams writes its rows
    /// into a [`RowWriter`]; any other plugin answers as upstream.
    fn process_call(
        &self,
        seq: i32,
        i_prot: &mut dyn TInputProtocol,
        o_prot: &mut dyn TOutputProtocol,
    ) -> thrift::Result<()> {
        let (registry, item, request) = read_call_args(i_prot)?;
        let plugin = self.handler.plugin(&registry, &item)?;
        let mut rows = RowWriter::new(self.stream.spool_dir.clone(), self.stream.memory_limit);
        let streamed = plugin.handle_call_streamed(&request, &mut rows);
        o_prot.write_message_begin(&TMessageIdentifier::new("call", TMessageType::Reply, seq))?;
        o_prot.write_struct_begin(&TStructIdentifier::new("ExtensionCallResult"))?;
        o_prot.write_field_begin(&TFieldIdentifier::new("result_value", TType::Struct, 0))?;
        match streamed {
            Some(status) => {
                if status.code.unwrap_or(0) != 0 {
                    rows.clear();
                }
                write_streamed_response(o_prot, &status, rows)?;
            }
            None => {
                drop(rows);
                plugin.handle_call(request).write_to_out_protocol(o_prot)?;
            }
        }
        o_prot.write_field_end()?;
        o_prot.write_field_stop()?;
        o_prot.write_struct_end()?;
        o_prot.write_message_end()?;
        o_prot.flush()
    }
}

/// An `ExtensionResponse {1: status, 2: response}` whose rows come from
/// `rows`: the same bytes the generated encoder writes for the same rows.
pub(crate) fn write_streamed_response(
    o_prot: &mut dyn TOutputProtocol,
    status: &osquery::ExtensionStatus,
    rows: RowWriter,
) -> thrift::Result<()> {
    let n = i32::try_from(rows.len()).map_err(|_| {
        thrift::Error::Application(ApplicationError::new(
            ApplicationErrorKind::InternalError,
            "too many rows",
        ))
    })?;
    o_prot.write_struct_begin(&TStructIdentifier::new("ExtensionResponse"))?;
    o_prot.write_field_begin(&TFieldIdentifier::new("status", TType::Struct, 1))?;
    status.write_to_out_protocol(o_prot)?;
    o_prot.write_field_end()?;
    o_prot.write_field_begin(&TFieldIdentifier::new("response", TType::List, 2))?;
    o_prot.write_list_begin(&TListIdentifier::new(TType::Map, n))?;
    rows.copy_to(o_prot)?;
    o_prot.write_list_end()?;
    o_prot.write_field_end()?;
    o_prot.write_field_stop()?;
    o_prot.write_struct_end()
}

/// The arguments of `Extension.call` (field ids as in osquery.thrift).
fn read_call_args(
    i_prot: &mut dyn TInputProtocol,
) -> thrift::Result<(String, String, osquery::ExtensionPluginRequest)> {
    i_prot.read_struct_begin()?;
    let (mut registry, mut item, mut request) = (None, None, None);
    loop {
        let field = i_prot.read_field_begin()?;
        if field.field_type == TType::Stop {
            break;
        }
        match (field.id, field.field_type) {
            (Some(1), TType::String) => registry = Some(i_prot.read_string()?),
            (Some(2), TType::String) => item = Some(i_prot.read_string()?),
            (Some(3), TType::Map) => {
                let m = i_prot.read_map_begin()?;
                let mut req = osquery::ExtensionPluginRequest::new();
                for _ in 0..m.size {
                    let k = i_prot.read_string()?;
                    let v = i_prot.read_string()?;
                    req.insert(k, v);
                }
                i_prot.read_map_end()?;
                request = Some(req);
            }
            (_, t) => i_prot.skip(t)?,
        }
        i_prot.read_field_end()?;
    }
    i_prot.read_struct_end()?;
    match (registry, item, request) {
        (Some(r), Some(i), Some(q)) => Ok((r, i, q)),
        _ => Err(thrift::Error::Protocol(thrift::ProtocolError::new(
            thrift::ProtocolErrorKind::InvalidData,
            "call: missing registry, item or request",
        ))),
    }
}
