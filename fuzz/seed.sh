#!/usr/bin/env bash
# Seed the cargo-fuzz corpora (fuzz/corpus/<target>/) from the fixtures:
# eslogger lines (tests/fixtures/*.ndjson), unified-log records
# (tests/fixtures/unified_log/*.ndjson), the exec argv inside them, and
# osquery query contexts. Idempotent; the corpora are not committed.
# Usage: fuzz/seed.sh   (from anywhere)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 - "$here" <<'PY'
import glob, hashlib, json, os, sys

fuzz = sys.argv[1]
root = os.path.dirname(fuzz)
corpus = os.path.join(fuzz, "corpus")
MAX = 16 * 1024  # libFuzzer's -max_len used in docs/robustness.md
counts = {}

def put(target, data):
    if len(data) > MAX:
        return
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1

def lines(pattern):
    for p in sorted(glob.glob(os.path.join(root, pattern))):
        with open(p, "rb") as f:
            yield p, [l.rstrip(b"\n") for l in f]

argvs = []
for path, ls in lines("tests/fixtures/*.ndjson"):
    prev = None
    for l in ls:
        # Mode byte 0x00: default line cap; 0x8f: small cap and buffer.
        put("es_line", b"\x00" + l)
        if prev is not None:
            put("es_line", b"\x00" + prev + b"\n" + l)
        prev = l
        try:
            ev = json.loads(l)["event"]["exec"]
            argvs.append([str(a) for a in ev.get("args", [])])
        except Exception:
            pass
    if ls:
        put("es_line", b"\x8f" + ls[0][:2000] + b"\n" + ls[-1][:2000])

for path, ls in lines("tests/fixtures/unified_log/*.ndjson"):
    for l in ls:
        put("unified_log_line", b"\x00" + l)  # raw mode
for msg in [
    "0x7fee38517e20 opened /Users/alice/Library/Keychains/login.keychain-db: 1646112 bytes",
    "displaying keychain prompt for /tmp/stealer(4242)",
    "supressing keychain prompt for unsigned client /tmp/x(77)",
    "Succeeded authorizing right 'system.keychain.modify' by client '/usr/bin/security' [123] for authorization created by '/usr/bin/security' [123] (3,0) (engine 1)",
    "Failed to authorize right 'com.apple.trust-settings.admin' by client '/tmp/a' [9] for authorization created by '/tmp/a' [9] (3,0) (-60005) (engine 2)",
]:
    fields = [msg, "2026-10-04 17:50:33.803491+0200", "default", "/usr/sbin/securityd", "118"]
    for mode in (0x01, 0x03, 0x41):
        put("unified_log_line", bytes([mode]) + b"\x00".join(f.encode() for f in fields))

extra = [
    ["security", "dump-keychain", "-d", "login.keychain"],
    ["security", "-q", "find-generic-password", "-ga", "Chrome"],
    ["security", "unlock-keychain", "-p", "hunter2", "x.keychain"],
    ["security", "import", "c.p12", "-k", "k", "-P", "pw", "-T", "/usr/bin/codesign"],
    ["security", "-i"],
    ["security", "create-keychain", "-ppw", "x"],
    ["sh", "-c", "echo 'pw' | sudo -S security unlock-keychain -p s3cret k && ls"],
    ["osascript", "-e", "do shell script \"dscl . authonly alice 'pw'\""],
    ["curl", "-u", "user:pass", "https://example.invalid"],
    ["tool", "--password=x", "--pass", "y"],
]
for a in argvs + extra:
    put("redact", b"\x00".join(w.encode() for w in a))
    if a and os.path.basename(a[0]) == "security":
        put("security_argv", b"\x00" + b"\x00".join(w.encode() for w in a))
        put("security_argv", b"\x01" + b"\x00".join(w.encode() for w in a[1:]))

contexts = [
    '{"constraints":[{"name":"time","list":[{"op":32,"expr":"1754550000"}],"affinity":"BIGINT"}],"colsUsed":["time"],"colsUsedBitset":1}',
    '{"constraints":[{"name":"time","list":[{"op":32,"expr":"100"},{"op":16,"expr":"200"}],"affinity":"BIGINT"},{"name":"path","list":[{"op":65,"expr":"%security%"}],"affinity":"TEXT"},{"name":"pid","list":"","affinity":"BIGINT"},{"name":"action","list":[{"op":"2","expr":"dump_keychain"}],"affinity":"TEXT"}]}',
    '{"constraints":[{"name":"path","list":[{"op":2,"expr":"x\' OR 1=1; DROP TABLE t; --"}]},{"name":"nosuchcol","list":[{"op":2,"expr":"1"}]}]}',
    '{"constraints":[{"name":"severity","list":[{"op":66,"expr":"h*"}]},{"name":"pid","list":[{"op":2,"expr":12}]}]}',
    '{"constraints":[]}',
    '',
]
for c in contexts:
    put("constraint_context", c.encode())
    put("constraint_context", b"\x00" + c.encode())

for t in ["es_line", "unified_log_line", "security_argv", "redact", "constraint_context"]:
    n = len(os.listdir(os.path.join(corpus, t)))
    print(f"{t}: {n} seed inputs ({counts.get(t, 0)} new)")
PY
