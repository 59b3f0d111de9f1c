#!/usr/bin/env python3
"""A fake osqueryd for end-to-end tests of osquery extensions.

It speaks osquery's extension protocol (Thrift binary protocol, buffered
transport, UNIX socket) using the generated code shipped in the PyPI package
``osquery`` (3.1.1) and the ``thrift`` runtime. Two roles:

* ``manager``: serve the ExtensionManager API on ``--socket`` the way osqueryd
  serves ``--extensions_socket``: accept ``registerExtension`` (or refuse it),
  answer pings, record ``deregisterExtension``. Every event is printed as one
  JSON line on stdout (flushed), so a test can follow the extension's life.
* ``call`` / ``columns`` / ``generate`` / ``ping`` / ``shutdown``: act as
  osqueryd calling into an extension's own socket ``<socket>.<uuid>``.

Output is JSON only on stdout; diagnostics go to stderr. See README.md.
"""

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import sys
import threading
import time

try:
    from thrift.protocol import TBinaryProtocol
    from thrift.server import TServer
    from thrift.Thrift import TApplicationException, TException
    from thrift.transport import TSocket, TTransport

    from osquery.extensions import Extension, ExtensionManager
    from osquery.extensions.ttypes import ExtensionResponse, ExtensionStatus
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "fake_em.py: missing Python packages (%s); install with\n"
        "  pip install -r %s\n"
        % (exc, os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt"))
    )
    sys.exit(3)

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_CALL_ERROR = 2


# --------------------------------------------------------------------------- output


class Emitter:
    """Thread-safe JSON-lines writer to stdout and, optionally, a file."""

    def __init__(self, events_out=None):
        self._lock = threading.Lock()
        self._file = open(events_out, "a", encoding="utf-8") if events_out else None

    def emit(self, event, **fields):
        record = {"event": event, "ts": round(time.time(), 6)}
        record.update(fields)
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            if self._file:
                self._file.write(line + "\n")
                self._file.flush()


def print_json(value):
    sys.stdout.write(json.dumps(value, sort_keys=True) + "\n")
    sys.stdout.flush()


def status_json(status):
    if status is None:
        return None
    out = {"code": status.code, "message": status.message}
    if status.uuid is not None:
        out["uuid"] = status.uuid
    return out


def info_json(info):
    return {
        "name": info.name,
        "version": info.version,
        "sdk_version": info.sdk_version,
        "min_sdk_version": info.min_sdk_version,
    }


def error_json(exc):
    err = {"type": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc)}
    if isinstance(exc, TApplicationException):
        err["kind"] = exc.type
    return err


# --------------------------------------------------------------------------- manager


class FakeManager(ExtensionManager.Iface):
    """What osqueryd serves on --extensions_socket."""

    def __init__(self, args, emitter):
        self.args = args
        self.emit = emitter.emit
        self.lock = threading.Lock()
        self.registered = {}  # uuid -> (info, registry)
        self.next_uuid = args.uuid
        self.pings = 0

    # Extension (base service)
    def ping(self):
        with self.lock:
            self.pings += 1
            count = self.pings
        if self.args.print_pings or count == 1:
            self.emit("ping", count=count)
        return ExtensionStatus(code=0, message="OK")

    def call(self, registry, item, request):
        self.emit("manager_call", registry=registry, item=item, request=request)
        return ExtensionResponse(
            status=ExtensionStatus(code=1, message="fake manager serves no plugins"), response=[]
        )

    def shutdown(self):
        self.emit("manager_shutdown")

    # ExtensionManager
    def extensions(self):
        with self.lock:
            return {u: info for u, (info, _) in self.registered.items()}

    def options(self):
        return {}

    def registerExtension(self, info, registry):
        refuse = None
        with self.lock:
            if self.args.refuse is not None:
                refuse = (self.args.refuse_code, self.args.refuse)
            elif any(i.name == info.name for i, _ in self.registered.values()):
                # What osqueryd answers for a second extension with the same name.
                refuse = (1, "Duplicate extension registered")
            else:
                uuid = self.next_uuid
                self.next_uuid += 1
                self.registered[uuid] = (info, registry)
        if refuse is not None:
            self.emit("refused", code=refuse[0], message=refuse[1], info=info_json(info),
                      registry=registry)
            return ExtensionStatus(code=refuse[0], message=refuse[1])
        self.emit("registered", uuid=uuid, info=info_json(info), registry=registry,
                  listen_path="%s.%d" % (self.args.socket, uuid))
        return ExtensionStatus(code=0, message="OK", uuid=uuid)

    def deregisterExtension(self, uuid):
        with self.lock:
            known = self.registered.pop(uuid, None) is not None
        self.emit("deregistered", uuid=uuid, known=known)
        if not known:
            return ExtensionStatus(code=1, message="No extension UUID registered", uuid=uuid)
        return ExtensionStatus(code=0, message="OK", uuid=uuid)

    def query(self, sql):
        self.emit("query", sql=sql)
        if not self.args.query_db:
            return ExtensionResponse(
                status=ExtensionStatus(code=1, message="fake manager cannot run SQL"), response=[]
            )
        # osqueryd runs the SQL over its tables and answers every value as a
        # string; here the tables are those of a SQLite file the test writes
        # (e.g. es_process_events rows in osquery's columns), read-only.
        import sqlite3
        try:
            con = sqlite3.connect("file:%s?mode=ro" % self.args.query_db, uri=True)
            try:
                cur = con.execute(sql)
                names = [d[0] for d in cur.description or []]
                rows = [
                    {n: "" if v is None else str(v) for n, v in zip(names, r)}
                    for r in cur.fetchall()
                ]
            finally:
                con.close()
        except sqlite3.Error as exc:
            return ExtensionResponse(status=ExtensionStatus(code=1, message=str(exc)), response=[])
        return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=rows)

    def getQueryColumns(self, sql):
        self.emit("get_query_columns", sql=sql)
        return self.query(sql)


def remove_stale_socket(path):
    """Remove a socket file nobody listens on; refuse to take over a live one."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SystemExit("fake_em.py: %s is a live socket; is another manager running?" % path)


def cmd_manager(args):
    emitter = Emitter(args.events_out)
    handler = FakeManager(args, emitter)
    remove_stale_socket(args.socket)

    transport = TSocket.TServerSocket(unix_socket=args.socket)
    server = TServer.TThreadedServer(
        ExtensionManager.Processor(handler),
        transport,
        TTransport.TBufferedTransportFactory(),
        TBinaryProtocol.TBinaryProtocolFactory(),
        daemon=True,
    )
    transport.listen()  # bind before announcing, so "listening" means connectable

    stop = threading.Event()  # exit requested
    closed = threading.Event()  # stop accepting connections
    reason = {"why": None}

    def request_stop(why):
        if reason["why"] is None:
            reason["why"] = why
        stop.set()

    def accept_loop():
        while not closed.is_set():
            try:
                client = transport.accept()
            except Exception as exc:  # socket closed on exit, or transient
                if closed.is_set():
                    return
                sys.stderr.write("fake_em.py: accept failed: %s\n" % exc)
                time.sleep(0.05)
                continue
            threading.Thread(target=server.handle, args=(client,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()

    signal.signal(signal.SIGTERM, lambda *_: request_stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: request_stop("SIGINT"))
    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            request_stop("stdin closed")
        threading.Thread(target=watch_stdin, daemon=True).start()

    emitter.emit("listening", socket=args.socket, pid=os.getpid())

    deadline = time.monotonic() + args.max_seconds if args.max_seconds > 0 else None
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            request_stop("max-seconds")
            break
        stop.wait(0.1)

    if args.shutdown_extensions_on_exit:
        # What osqueryd does when it exits: call shutdown() on each extension.
        with handler.lock:
            uuids = sorted(handler.registered)
        for uuid in uuids:
            path = "%s.%d" % (args.socket, uuid)
            try:
                with ExtClient(path, connect_timeout=1.0, io_timeout=2.0) as client:
                    client.shutdown()
                emitter.emit("shutdown_sent", uuid=uuid)
            except Exception as exc:
                emitter.emit("shutdown_sent", uuid=uuid, error=error_json(exc))
        # Give the extensions a moment to deregister over their connections.
        grace_end = time.monotonic() + args.shutdown_grace
        while time.monotonic() < grace_end:
            with handler.lock:
                if not handler.registered:
                    break
            time.sleep(0.05)

    closed.set()
    with handler.lock:
        remaining = sorted(handler.registered)
        pings = handler.pings
    emitter.emit("exit", reason=reason["why"], pings=pings, registered=remaining)
    try:
        transport.close()
    finally:
        try:
            os.unlink(args.socket)
        except OSError:
            pass
    return EXIT_OK


# --------------------------------------------------------------------------- client


class ExtClient:
    """osqueryd's side of an extension socket, with the connect retry loop
    (the extension registers before its listener is bound)."""

    def __init__(self, path, connect_timeout=5.0, io_timeout=30.0):
        deadline = time.monotonic() + connect_timeout
        while True:
            sock = TSocket.TSocket(unix_socket=path)
            if io_timeout and io_timeout > 0:
                sock.setTimeout(io_timeout * 1000.0)
            self.transport = TTransport.TBufferedTransport(sock)
            try:
                self.transport.open()
                break
            except TTransport.TTransportException:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self.client = Extension.Client(TBinaryProtocol.TBinaryProtocol(self.transport))

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.transport.close()
        except Exception:
            pass


def parse_request(text):
    """A JSON object; non-string values (e.g. a "context" object) are JSON-encoded,
    numbers and booleans stringified, so requests can be written naturally."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise SystemExit("fake_em.py: --request is not JSON: %s" % exc)
    if not isinstance(obj, dict):
        raise SystemExit("fake_em.py: --request must be a JSON object")
    out = {}
    for key, value in obj.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (dict, list)):
            out[key] = json.dumps(value)
        elif isinstance(value, bool):
            out[key] = "1" if value else "0"
        else:
            out[key] = str(value)
    return out


class StartGate:
    """Lets K client threads connect first, then start calling together."""

    def __init__(self, parties):
        self.ready = threading.Barrier(parties + 1)
        self.go = threading.Event()
        self.t0 = None

    def wait(self):  # worker side, after connecting
        try:
            self.ready.wait()
        except threading.BrokenBarrierError:
            pass  # another worker failed to connect; start anyway
        self.go.wait()

    def abort(self):  # worker side, connect failed
        self.ready.abort()

    def release(self, timeout):  # main thread
        try:
            self.ready.wait(timeout=timeout)
        except threading.BrokenBarrierError:
            pass
        self.t0 = time.monotonic()
        self.go.set()


def run_calls(args, registry, item, request, gate=None):
    """Do --repeat calls; return one result object."""
    result = {}
    holder = None
    timings = []
    resp = None
    try:
        if not args.reconnect:
            try:
                holder = ExtClient(args.socket, args.connect_timeout, args.timeout)
            except Exception:
                if gate is not None:
                    gate.abort()
                raise
        if gate is not None:
            gate.wait()
        begin = time.monotonic()
        for _ in range(args.repeat):
            one = time.monotonic()
            if args.reconnect:
                with ExtClient(args.socket, args.connect_timeout, args.timeout) as client:
                    resp = client.call(registry, item, request)
            else:
                resp = holder.client.call(registry, item, request)
            timings.append((time.monotonic() - one) * 1000.0)
        end = time.monotonic()
        result["status"] = status_json(resp.status)
        result["response"] = resp.response if resp.response is not None else []
        result["elapsed_ms"] = round((end - begin) * 1000.0, 3)
        if gate is not None and gate.t0 is not None:
            result["start_ms"] = round((begin - gate.t0) * 1000.0, 3)
            result["end_ms"] = round((end - gate.t0) * 1000.0, 3)
        if args.repeat > 1:
            result["repeat"] = args.repeat
            result["per_call_ms"] = {
                "min": round(min(timings), 3),
                "median": round(statistics.median(timings), 3),
                "max": round(max(timings), 3),
            }
    except (TException, OSError) as exc:
        result["error"] = error_json(exc)
    finally:
        if holder is not None:
            holder.close()
    return result


def do_call(args, registry, item, request):
    if args.repeat < 1 or args.concurrent < 1:
        sys.stderr.write("fake_em.py: --repeat and --concurrent must be >= 1\n")
        return EXIT_USAGE
    if args.concurrent == 1:
        result = run_calls(args, registry, item, request)
        print_json(result)
        return EXIT_CALL_ERROR if "error" in result else EXIT_OK

    results = [None] * args.concurrent
    gate = StartGate(args.concurrent)

    def worker(i):
        res = run_calls(args, registry, item, request, gate=gate)
        res["thread"] = i
        results[i] = res

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrent)]
    for t in threads:
        t.start()
    gate.release(timeout=args.connect_timeout + 5)
    for t in threads:
        t.join()
    print_json(results)
    return EXIT_CALL_ERROR if any("error" in r for r in results) else EXIT_OK


def cmd_call(args):
    return do_call(args, args.registry, args.item, parse_request(args.request))


def cmd_columns(args):
    return do_call(args, "table", args.table, {"action": "columns"})


def cmd_generate(args):
    if args.context is not None:
        try:
            context = json.loads(args.context)
        except ValueError as exc:
            raise SystemExit("fake_em.py: --context is not JSON: %s" % exc)
    else:
        context = {"constraints": []}
    for cond in args.where or []:
        if "=" not in cond:
            raise SystemExit("fake_em.py: --where wants COLUMN=VALUE, got %r" % cond)
        col, value = cond.split("=", 1)
        entry = next((c for c in context.setdefault("constraints", []) if c.get("name") == col), None)
        if entry is None:
            entry = {"name": col, "list": [], "affinity": "TEXT"}
            context["constraints"].append(entry)
        if not isinstance(entry.get("list"), list):
            entry["list"] = []
        entry["list"].append({"op": 2, "expr": value})
    request = {"action": "generate", "context": json.dumps(context)}
    return do_call(args, "table", args.table, request)


def cmd_ping(args):
    try:
        with ExtClient(args.socket, args.connect_timeout, args.timeout) as client:
            status = client.ping()
        print_json({"status": status_json(status)})
        return EXIT_OK
    except (TException, OSError) as exc:
        print_json({"error": error_json(exc)})
        return EXIT_CALL_ERROR


def cmd_shutdown(args):
    try:
        with ExtClient(args.socket, args.connect_timeout, args.timeout) as client:
            client.shutdown()
        print_json({"shutdown": True})
        return EXIT_OK
    except (TException, OSError) as exc:
        print_json({"shutdown": False, "error": error_json(exc)})
        return EXIT_CALL_ERROR


# --------------------------------------------------------------------------- CLI


def build_parser():
    p = argparse.ArgumentParser(
        prog="fake_em.py",
        description="Fake osquery extension manager and extension client (JSON on stdout).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("manager", help="serve the ExtensionManager API on --socket")
    m.add_argument("--socket", required=True, help="manager socket path (osqueryd's --extensions_socket)")
    m.add_argument("--refuse", metavar="MSG", help="refuse every registerExtension with this message")
    m.add_argument("--refuse-code", type=int, default=1, help="status code for --refuse (default 1)")
    m.add_argument("--uuid", type=int, default=1, help="first uuid to assign (default 1)")
    m.add_argument("--events-out", metavar="FILE", help="also append event lines to FILE")
    m.add_argument("--print-pings", action="store_true", help="one event per ping (default: first only)")
    m.add_argument("--query-db", metavar="SQLITE",
                   help="answer ExtensionManager.query with this SQLite file's tables (read-only)")
    m.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin is closed (give the child a pipe, not /dev/null)")
    m.add_argument("--max-seconds", type=float, default=0,
                   help="exit after this many seconds (0 = never; a safety net for tests)")
    m.add_argument("--shutdown-extensions-on-exit", action="store_true",
                   help="on exit call shutdown() on every registered extension, as osqueryd does")
    m.add_argument("--shutdown-grace", type=float, default=2.0,
                   help="after those shutdown() calls, wait up to this long for deregistration (default 2 s)")
    m.set_defaults(func=cmd_manager)

    def client_opts(sp):
        sp.add_argument("--socket", required=True, help="extension socket, <manager socket>.<uuid>")
        sp.add_argument("--timeout", type=float, default=30.0,
                        help="read/write timeout per call in seconds (default 30; 0 = none)")
        sp.add_argument("--connect-timeout", type=float, default=5.0,
                        help="keep retrying the connect this long (default 5 s)")

    def call_opts(sp):
        client_opts(sp)
        sp.add_argument("--repeat", type=int, default=1, help="calls per connection/thread")
        sp.add_argument("--concurrent", type=int, default=1,
                        help="K threads, each with its own connection; prints a JSON list")
        sp.add_argument("--reconnect", action="store_true",
                        help="new connection for every call, as osqueryd does")

    c = sub.add_parser("call", help="Extension.call(registry, item, request)")
    call_opts(c)
    c.add_argument("--registry", default="table")
    c.add_argument("--item", required=True)
    c.add_argument("--request", required=True, help='JSON object, e.g. \'{"action":"generate"}\'')
    c.set_defaults(func=cmd_call)

    col = sub.add_parser("columns", help='call(table, NAME, {"action":"columns"})')
    call_opts(col)
    col.add_argument("--table", required=True)
    col.set_defaults(func=cmd_columns)

    g = sub.add_parser("generate", help='call(table, NAME, {"action":"generate","context":...})')
    call_opts(g)
    g.add_argument("--table", required=True)
    g.add_argument("--context", help="query context JSON (default {\"constraints\":[]})")
    g.add_argument("--where", action="append", metavar="COL=VALUE",
                   help="add an equality constraint (op 2), repeatable")
    g.set_defaults(func=cmd_generate)

    pg = sub.add_parser("ping", help="Extension.ping()")
    client_opts(pg)
    pg.set_defaults(func=cmd_ping)

    s = sub.add_parser("shutdown", help="Extension.shutdown(), what osqueryd sends on exit")
    client_opts(s)
    s.set_defaults(func=cmd_shutdown)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # thrift logs every refused connect attempt at ERROR; the retry loop expects them.
    logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
