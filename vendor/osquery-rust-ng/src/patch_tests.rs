//! Tests for the vendored patches (see PATCHES.md).
//!
//! They run the real `Server` against an in-process mock extension manager
//! built from the generated `ExtensionManagerSyncProcessor`, served over a UNIX
//! socket with the same transports osqueryd uses (buffered, binary protocol).

#[cfg(test)]
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_in_result
)] // Tests are allowed to panic on setup failures
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::{mpsc, Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::_osquery as osquery;
    use crate::client::ExtensionClient;
    use crate::plugin::{ColumnDef, ColumnOptions, ColumnType, Plugin, ReadOnlyTable};
    use crate::{
        ExtensionPluginRequest, ExtensionResponse, ExtensionStatus, Registration,
        RegistrationRefused, Server, ServerStopHandle,
    };

    // ----- mock extension manager -------------------------------------------------

    #[derive(Default)]
    struct MockState {
        registered: Vec<(osquery::InternalExtensionInfo, osquery::ExtensionRegistry)>,
        deregistered: Vec<i64>,
        pings: usize,
    }

    #[derive(Clone)]
    struct MockManager {
        uuid: i64,
        refuse: Option<(i32, String)>,
        /// Every manager ping after the first blocks this long (a wedged osqueryd).
        ping_delay: Option<Duration>,
        state: Arc<Mutex<MockState>>,
    }

    impl MockManager {
        fn new(uuid: i64) -> Self {
            MockManager {
                uuid,
                refuse: None,
                ping_delay: None,
                state: Arc::new(Mutex::new(MockState::default())),
            }
        }

        /// Serve on `path` in a background thread (never joined: the thrift
        /// listener cannot be stopped; the test process reaps it).
        fn serve(&self, path: &Path) {
            let processor = osquery::ExtensionManagerSyncProcessor::new(self.clone());
            let mut server = thrift::server::TServer::new(
                Box::new(thrift::transport::TBufferedReadTransportFactory::new()),
                Box::new(thrift::protocol::TBinaryInputProtocolFactory::new()),
                Box::new(thrift::transport::TBufferedWriteTransportFactory::new()),
                Box::new(thrift::protocol::TBinaryOutputProtocolFactory::new()),
                processor,
                4,
            );
            let path = path.to_path_buf();
            thread::spawn(move || {
                let _ = server.listen_uds(path);
            });
        }
    }

    fn ok_status() -> osquery::ExtensionStatus {
        osquery::ExtensionStatus {
            code: Some(0),
            message: Some("OK".into()),
            uuid: None,
        }
    }

    impl osquery::ExtensionSyncHandler for MockManager {
        fn handle_ping(&self) -> thrift::Result<osquery::ExtensionStatus> {
            let n = {
                let mut st = self.state.lock().unwrap();
                st.pings += 1;
                st.pings
            };
            if let (Some(d), true) = (self.ping_delay, n > 1) {
                thread::sleep(d);
            }
            Ok(ok_status())
        }
        fn handle_call(
            &self,
            _registry: String,
            _item: String,
            _request: osquery::ExtensionPluginRequest,
        ) -> thrift::Result<osquery::ExtensionResponse> {
            Ok(osquery::ExtensionResponse::new(ok_status(), vec![]))
        }
        fn handle_shutdown(&self) -> thrift::Result<()> {
            Ok(())
        }
    }

    impl osquery::ExtensionManagerSyncHandler for MockManager {
        fn handle_extensions(&self) -> thrift::Result<osquery::InternalExtensionList> {
            Ok(Default::default())
        }
        fn handle_options(&self) -> thrift::Result<osquery::InternalOptionList> {
            Ok(Default::default())
        }
        fn handle_register_extension(
            &self,
            info: osquery::InternalExtensionInfo,
            registry: osquery::ExtensionRegistry,
        ) -> thrift::Result<osquery::ExtensionStatus> {
            self.state.lock().unwrap().registered.push((info, registry));
            Ok(match &self.refuse {
                Some((code, msg)) => osquery::ExtensionStatus {
                    code: Some(*code),
                    message: Some(msg.clone()),
                    uuid: None,
                },
                None => osquery::ExtensionStatus {
                    code: Some(0),
                    message: Some("OK".into()),
                    uuid: Some(self.uuid),
                },
            })
        }
        fn handle_deregister_extension(
            &self,
            uuid: osquery::ExtensionRouteUUID,
        ) -> thrift::Result<osquery::ExtensionStatus> {
            self.state.lock().unwrap().deregistered.push(uuid);
            Ok(ok_status())
        }
        fn handle_query(&self, sql: String) -> thrift::Result<osquery::ExtensionResponse> {
            if sql.contains("no_such_table") {
                return Ok(osquery::ExtensionResponse::new(
                    osquery::ExtensionStatus {
                        code: Some(1),
                        message: Some("no such table: no_such_table".into()),
                        uuid: None,
                    },
                    vec![],
                ));
            }
            let row = BTreeMap::from([("sql".to_string(), sql)]);
            Ok(osquery::ExtensionResponse::new(ok_status(), vec![row]))
        }
        fn handle_get_query_columns(
            &self,
            _sql: String,
        ) -> thrift::Result<osquery::ExtensionResponse> {
            Ok(osquery::ExtensionResponse::new(ok_status(), vec![]))
        }
    }

    // ----- a tiny table -----------------------------------------------------------

    struct EchoTable;

    impl ReadOnlyTable for EchoTable {
        fn name(&self) -> String {
            "echo_table".into()
        }
        fn columns(&self) -> Vec<ColumnDef> {
            vec![
                ColumnDef::new("value", ColumnType::Text, ColumnOptions::DEFAULT),
                ColumnDef::new("context", ColumnType::Text, ColumnOptions::HIDDEN),
            ]
        }
        fn generate(&self, req: ExtensionPluginRequest) -> ExtensionResponse {
            let row = BTreeMap::from([
                ("value".to_string(), "42".to_string()),
                (
                    "context".to_string(),
                    req.get("context").cloned().unwrap_or_default(),
                ),
            ]);
            ExtensionResponse::new(ExtensionStatus::new(0, Some("OK".into()), None), vec![row])
        }
        fn shutdown(&self) {}
    }

    /// A table that streams `n` rows (the count comes in `context`).
    struct CountingTable;

    impl ReadOnlyTable for CountingTable {
        fn name(&self) -> String {
            "counting".into()
        }
        fn columns(&self) -> Vec<ColumnDef> {
            vec![
                ColumnDef::new("i", ColumnType::BigInt, ColumnOptions::DEFAULT),
                ColumnDef::new("text", ColumnType::Text, ColumnOptions::DEFAULT),
            ]
        }
        fn generate(&self, _req: ExtensionPluginRequest) -> ExtensionResponse {
            panic!("a streaming table is asked through generate_streamed")
        }
        fn generate_streamed(
            &self,
            req: &ExtensionPluginRequest,
            rows: &mut crate::rows::RowWriter,
        ) -> Option<ExtensionStatus> {
            let n: usize = req.get("context").and_then(|c| c.parse().ok()).unwrap_or(0);
            if n == 13 {
                rows.row([("i", "0")]).unwrap();
                return Some(ExtensionStatus::new(1, Some("failed midway".into()), None));
            }
            for i in 0..n {
                let i = i.to_string();
                let text = format!("row {i} {}", "x".repeat(100));
                rows.row([("i", i.as_str()), ("text", text.as_str())])
                    .unwrap();
            }
            Some(ExtensionStatus::new(0, Some("OK".into()), None))
        }
        fn shutdown(&self) {}
    }

    // ----- helpers ----------------------------------------------------------------

    fn manager_socket(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("osquery.em")
    }

    /// Run the server on a thread; the receiver yields run()'s result.
    fn spawn_run(
        mut server: Server<Plugin>,
    ) -> (ServerStopHandle, mpsc::Receiver<thrift::Result<()>>) {
        let handle = server.get_stop_handle();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(server.run());
        });
        (handle, rx)
    }

    fn wait_registration(handle: &ServerStopHandle) -> Registration {
        let start = Instant::now();
        loop {
            if let Some(r) = handle.registration() {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "never registered");
            thread::sleep(Duration::from_millis(10));
        }
    }

    // ----- patch 1 + 4 + 6: version at registration, public client, ping OK -------

    #[test]
    fn registers_version_and_serves_public_client() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(7);
        mock.serve(&sock);

        let mut server = Server::new_with_timeout(
            Some("probe"),
            sock.to_str().unwrap(),
            Duration::from_secs(2),
        )
        .expect("connect")
        .with_version("1.2.3")
        .with_sdk_version("5.12.1")
        .with_min_sdk_version("5.0.0");
        server.register_plugin(Plugin::readonly_table(EchoTable));
        let (handle, rx) = spawn_run(server);

        let reg = wait_registration(&handle);
        assert_eq!(reg.uuid, 7);
        assert_eq!(reg.listen_path, format!("{}.7", sock.display()));

        {
            let st = mock.state.lock().unwrap();
            let (info, registry) = &st.registered[0];
            assert_eq!(info.name.as_deref(), Some("probe"));
            assert_eq!(info.version.as_deref(), Some("1.2.3"));
            assert_eq!(info.sdk_version.as_deref(), Some("5.12.1"));
            assert_eq!(info.min_sdk_version.as_deref(), Some("5.0.0"));
            let routes = &registry["table"]["echo_table"];
            assert_eq!(routes.len(), 2);
            assert_eq!(routes[0]["name"], "value");
            assert_eq!(routes[1]["op"], "16");
        }

        let mut client = ExtensionClient::connect_with_timeout(
            &reg.listen_path,
            Duration::from_secs(2),
            Some(Duration::from_secs(5)),
        )
        .expect("client connect");
        let st = client.ping().expect("ping");
        assert_eq!(st.code, Some(0));
        assert_eq!(st.message.as_deref(), Some("OK"));

        let req = BTreeMap::from([
            ("action".to_string(), "generate".to_string()),
            ("context".to_string(), r#"{"constraints":[]}"#.to_string()),
        ]);
        let resp = client.call("table", "echo_table", req).expect("call");
        assert_eq!(resp.status.as_ref().and_then(|s| s.code), Some(0));
        let rows = resp.response.expect("rows");
        assert_eq!(rows[0]["value"], "42");
        assert_eq!(rows[0]["context"], r#"{"constraints":[]}"#);

        // Unknown item -> thrift application error, connection then closed by server.
        let mut bad = ExtensionClient::connect(&reg.listen_path).expect("connect");
        assert!(bad.call("table", "nope", BTreeMap::new()).is_err());

        // shutdown RPC (what osqueryd sends) ends run() with Ok, deregisters.
        client.shutdown().expect("shutdown rpc");
        let result = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("run() did not return after shutdown RPC");
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(mock.state.lock().unwrap().deregistered, vec![7]);
        assert!(!Path::new(&reg.listen_path).exists(), "socket not cleaned");
    }

    #[test]
    fn new_with_version_sets_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(3);
        mock.serve(&sock);
        // serve() binds asynchronously; new_with_version makes one attempt.
        let _ = crate::client::connect_with_retry(&sock, Duration::from_secs(2)).expect("up");

        let server = Server::<Plugin>::new_with_version(Some("v"), "9.9.9", sock.to_str().unwrap())
            .expect("connect");
        let (handle, rx) = spawn_run(server);
        wait_registration(&handle);
        assert_eq!(
            mock.state.lock().unwrap().registered[0]
                .0
                .version
                .as_deref(),
            Some("9.9.9")
        );
        handle.stop();
        assert!(rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop")
            .is_ok());
    }

    // ----- patch 2: refused registration is an error -------------------------------

    #[test]
    fn refused_registration_makes_run_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mut mock = MockManager::new(1);
        mock.refuse = Some((1, "Duplicate extension registered".into()));
        mock.serve(&sock);

        let server = Server::<Plugin>::new_with_timeout(
            Some("dup"),
            sock.to_str().unwrap(),
            Duration::from_secs(2),
        )
        .expect("connect");
        let (handle, rx) = spawn_run(server);
        let err = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("run() kept running after refusal")
            .expect_err("run() must fail");
        let refused = RegistrationRefused::from_thrift_error(&err).expect("RegistrationRefused");
        assert_eq!(refused.code, 1);
        assert_eq!(refused.message, "Duplicate extension registered");
        assert_eq!(refused.name, "dup");
        assert!(
            err.to_string().contains("Duplicate extension registered"),
            "{err}"
        );
        assert!(handle.registration().is_none());
    }

    // ----- patch 3: waiting for the manager socket ---------------------------------

    #[test]
    fn new_with_timeout_waits_for_late_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(1);
        let late = sock.clone();
        let m2 = mock.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            m2.serve(&late);
        });
        let start = Instant::now();
        let server = Server::<Plugin>::new_with_timeout(
            None,
            sock.to_str().unwrap(),
            Duration::from_secs(5),
        );
        assert!(server.is_ok(), "{:?}", server.err());
        assert!(start.elapsed() >= Duration::from_millis(250));
    }

    #[test]
    fn new_with_timeout_gives_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let start = Instant::now();
        let err = Server::<Plugin>::new_with_timeout(
            None,
            sock.to_str().unwrap(),
            Duration::from_millis(300),
        )
        .err()
        .expect("must fail");
        let elapsed = start.elapsed();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("osquery.em"), "{err}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");

        // Upstream constructor: exactly one attempt.
        let start = Instant::now();
        assert!(Server::<Plugin>::new(None, sock.to_str().unwrap()).is_err());
        assert!(start.elapsed() < Duration::from_millis(200));
    }

    // ----- patch 5: manager I/O timeout, listener checks ---------------------------

    #[test]
    fn wedged_manager_ping_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mut mock = MockManager::new(2);
        mock.ping_delay = Some(Duration::from_secs(30));
        mock.serve(&sock);

        let server = Server::<Plugin>::new_with_timeout(
            None,
            sock.to_str().unwrap(),
            Duration::from_secs(2),
        )
        .expect("connect")
        .with_io_timeout(Some(Duration::from_millis(300)))
        .with_ping_interval(Duration::from_millis(50));
        let start = Instant::now();
        let (_handle, rx) = spawn_run(server);
        let result = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("run() blocked on a wedged manager");
        assert!(result.is_ok(), "{result:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        // The broken connection is not used for deregistration.
        assert!(mock.state.lock().unwrap().deregistered.is_empty());
    }

    #[test]
    fn stale_listener_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(5);
        mock.serve(&sock);
        // Leave a dead socket file at <sock>.5, as a crashed extension would.
        let stale = format!("{}.5", sock.display());
        drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind stale"));
        assert!(Path::new(&stale).exists());

        let mut server =
            Server::new_with_timeout(None, sock.to_str().unwrap(), Duration::from_secs(2))
                .expect("connect");
        server.register_plugin(Plugin::readonly_table(EchoTable));
        let (handle, rx) = spawn_run(server);
        let reg = wait_registration(&handle);
        assert_eq!(reg.listen_path, stale);
        let mut c = ExtensionClient::connect_with_timeout(&stale, Duration::from_secs(2), None)
            .expect("connect");
        assert_eq!(c.ping().expect("ping").code, Some(0));
        handle.stop();
        assert!(rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop")
            .is_ok());
    }

    #[test]
    fn listener_bind_failure_fails_run_and_deregisters() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Manager path fits in sun_path (108 bytes) but "<path>.<uuid>" does not.
        let base = dir.path().display().to_string();
        let pad = 100usize.saturating_sub(base.len() + 1);
        let sock = dir.path().join("s".repeat(pad));
        assert!(sock.to_str().unwrap().len() <= 100);
        let mock = MockManager::new(123_456_789_012);
        mock.serve(&sock);

        let server = Server::<Plugin>::new_with_timeout(
            None,
            sock.to_str().unwrap(),
            Duration::from_secs(2),
        )
        .expect("connect");
        let (handle, rx) = spawn_run(server);
        let err = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("run() hung")
            .expect_err("listener failure must fail run()");
        assert!(err.to_string().contains("listening on"), "{err}");
        // The io::Error text survives (thrift's Display alone says "transport error").
        assert!(err.to_string().contains("path must be shorter"), "{err}");
        assert!(handle.registration().is_none());
        assert_eq!(
            mock.state.lock().unwrap().deregistered,
            vec![123_456_789_012]
        );
    }

    // ----- patch 8: the extension socket stops cleanly -----------------------------

    #[test]
    fn stop_ends_accept_loop_workers_and_idle_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(11);
        mock.serve(&sock);
        let mut server =
            Server::new_with_timeout(None, sock.to_str().unwrap(), Duration::from_secs(2))
                .expect("connect")
                .with_listener_threads(2);
        server.register_plugin(Plugin::readonly_table(EchoTable));
        let (handle, rx) = spawn_run(server);
        let reg = wait_registration(&handle);

        // One client that answered a call and stays connected, idle, holding
        // a worker; upstream's listener could not end it.
        let mut idle = ExtensionClient::connect_with_timeout(
            &reg.listen_path,
            Duration::from_secs(2),
            Some(Duration::from_secs(10)),
        )
        .expect("connect");
        assert_eq!(idle.ping().expect("ping").code, Some(0));

        let start = Instant::now();
        handle.stop();
        let result = rx.recv_timeout(Duration::from_secs(5)).expect("run() hung");
        assert!(result.is_ok(), "{result:?}");
        // Every socket thread was joined well inside the stop timeout (a
        // thread still running would have cost the full 5 s).
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        // The idle connection was ended by the server, not left open.
        let err = idle.ping().expect_err("connection must be closed");
        assert!(!err.to_string().is_empty());
        assert!(!Path::new(&reg.listen_path).exists(), "socket not cleaned");
        assert_eq!(mock.state.lock().unwrap().deregistered, vec![11]);
    }

    #[test]
    fn listener_stop_joins_every_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ext.sock");
        let path = path.to_str().unwrap();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler =
            crate::server::Handler::new(&[Plugin::readonly_table(EchoTable)], flag.clone())
                .expect("handler");
        let listener = crate::listener::Listener::start(
            path,
            handler,
            3,
            crate::listener::StreamOptions {
                spool_dir: None,
                memory_limit: 1024,
            },
            flag,
        )
        .expect("start");
        let mut c = ExtensionClient::connect(path).expect("connect");
        assert_eq!(c.ping().expect("ping").code, Some(0));
        let start = Instant::now();
        assert!(
            listener.stop(Duration::from_secs(3)),
            "a thread was left running"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    // ----- patch 9: streamed answers -----------------------------------------------

    #[test]
    fn streamed_answer_spills_and_decodes_like_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = tempfile::tempdir().expect("spool");
        let sock = manager_socket(&dir);
        let mock = MockManager::new(12);
        mock.serve(&sock);
        let mut server =
            Server::new_with_timeout(None, sock.to_str().unwrap(), Duration::from_secs(2))
                .expect("connect")
                .with_spool_dir(spool.path())
                .with_spool_memory_limit(16 * 1024);
        server.register_plugin(Plugin::readonly_table(CountingTable));
        server.register_plugin(Plugin::readonly_table(EchoTable));
        let (handle, rx) = spawn_run(server);
        let reg = wait_registration(&handle);
        let mut c = ExtensionClient::connect_with_timeout(
            &reg.listen_path,
            Duration::from_secs(2),
            Some(Duration::from_secs(10)),
        )
        .expect("connect");
        let gen = |n: &str| {
            BTreeMap::from([
                ("action".to_string(), "generate".to_string()),
                ("context".to_string(), n.to_string()),
            ])
        };
        // 5,000 rows of ~130 bytes: far past the 16 KiB memory limit.
        for n in [0usize, 1, 5000] {
            let resp = c
                .call("table", "counting", gen(&n.to_string()))
                .expect("call");
            assert_eq!(resp.status.as_ref().and_then(|s| s.code), Some(0));
            let rows = resp.response.expect("rows");
            assert_eq!(rows.len(), n);
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(r["i"], i.to_string());
                assert!(r["text"].starts_with(&format!("row {i} ")));
                assert_eq!(r.len(), 2);
            }
        }
        // A failed answer carries its status and no partial rows.
        let resp = c.call("table", "counting", gen("13")).expect("call");
        assert_eq!(resp.status.as_ref().and_then(|s| s.code), Some(1));
        assert_eq!(resp.response.map(|r| r.len()), Some(0));
        // A table that does not stream is answered as upstream, on the same
        // connection; so are the columns of a streaming one.
        let resp = c.call("table", "echo_table", gen("{}")).expect("call");
        assert_eq!(resp.response.expect("rows")[0]["value"], "42");
        let cols = BTreeMap::from([("action".to_string(), "columns".to_string())]);
        let resp = c.call("table", "counting", cols).expect("columns");
        assert_eq!(resp.response.expect("routes").len(), 2);
        // Spill files are unlinked when created: nothing left behind.
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
        handle.stop();
        assert!(rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop")
            .is_ok());
    }

    // ----- patch 10: the manager's query ------------------------------------------

    #[test]
    fn manager_client_runs_query() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = manager_socket(&dir);
        MockManager::new(1).serve(&sock);
        let mut m = crate::client::ManagerClient::connect_with_timeout(
            &sock,
            Duration::from_secs(2),
            Some(Duration::from_secs(5)),
        )
        .expect("connect");
        let resp = m.query("SELECT 1 AS one").expect("query");
        assert_eq!(resp.status.as_ref().and_then(|s| s.code), Some(0));
        assert_eq!(resp.response.expect("rows")[0]["sql"], "SELECT 1 AS one");
        let resp = m.query("SELECT * FROM no_such_table").expect("query");
        assert_eq!(resp.status.as_ref().and_then(|s| s.code), Some(1));
        assert!(resp
            .status
            .and_then(|s| s.message)
            .unwrap_or_default()
            .contains("no such table"));
    }
}
