#!/usr/bin/env python3
"""Generate a large, realistic eslogger capture for the scan benchmark.

Line shapes come from real captures in the repository (samples/capture.ndjson
and tests/fixtures/*.ndjson): each template is an original line, byte for
byte, with slots cut out for the fields that make an event unique
(global_seq_num, seq_num, mach_time, time, pids and pidversions) and, for
unrelated events, the paths in the event body (replaced with ordinary paths).

Mix: by default ~1% of events are keychain-related (the lines that mention
keychain material or a credential tool, or exec `security`); the other ~99%
are unrelated events in the proportions of samples/capture.ndjson (mostly
open/close, then exec/fork/exit/create/...). `--exec-share` overrides the
share of exec+fork among the unrelated events.

The output is streamed to disk; memory stays small whatever the size.

    gen_capture.py --size-mb 100 --out /tmp/capture-100.ndjson [--seed 1]

Prints one JSON line with what was written (bytes, lines, per-kind counts).
MB is 10^6 bytes.
"""

import argparse
import glob
import json
import os
import random
import re
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# What makes a template "keychain-related" (mirrors the prefilter's material
# and tool needles in tables/src/scan.rs, plus exec of /usr/bin/security).
KEYCHAIN_MARKERS = [b"eychain", b"SystemKey", b"azagne", b"AZAGNE", b"hainbreaker"]
SECURITY_EXEC = b'"path":"\\/usr\\/bin\\/security"'

# Ordinary paths for unrelated events. Nothing here may contain a
# prefilter needle.
FILE_DIRS = [
    "/usr/lib", "/usr/lib/system", "/System/Library/Frameworks/Foundation.framework/Versions/C",
    "/System/Library/PrivateFrameworks/CoreUtils.framework", "/private/var/folders/xy/abc123/T",
    "/Users/alice/Documents/projects/app/src", "/Users/alice/Library/Caches/com.apple.Safari",
    "/Users/alice/Library/Application Support/Code/User/workspaceStorage",
    "/Applications/Slack.app/Contents/Resources", "/private/etc", "/Library/Preferences",
    "/Users/bob/Downloads", "/opt/homebrew/Cellar/python@3.12/3.12.4/lib/python3.12",
    "/System/Library/CoreServices", "/private/var/db/timezone/zoneinfo",
]
FILE_NAMES = [
    "libSystem.B.dylib", "Info.plist", "main.rs", "index.js", "cache.db", "prefs.plist",
    "report.pdf", "notes.txt", "data.sqlite-wal", "localtime", "Localizable.strings",
    "icon.icns", "module.pyc", "README.md", "config.json", "state.vscdb",
]
EXEC_PATHS = [
    "/bin/ls", "/bin/sh", "/bin/zsh", "/usr/bin/git", "/usr/bin/env", "/usr/bin/grep",
    "/usr/bin/xcrun", "/usr/libexec/xpcproxy", "/usr/sbin/mdworker_shared",
    "/opt/homebrew/bin/python3", "/usr/bin/make", "/bin/cat", "/usr/bin/sed",
    "/Applications/Slack.app/Contents/MacOS/Slack", "/usr/libexec/nsurlsessiond",
]

SLOT_RE = re.compile(
    rb'("global_seq_num":)(\d+)'
    rb'|("seq_num":)(\d+)'
    rb'|("mach_time":)(\d+)'
    rb'|("time":")(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)(Z")'
    rb'|("pid":)(\d+)'
    rb'|("pidversion":)(\d+)'
)
PATH_RE = re.compile(rb'("path":")((?:[^"\\]|\\.)*)(")')


def esc(path):
    """eslogger escapes slashes."""
    return path.replace("/", "\\/").encode()


class Template:
    """A line as [literal, slot, literal, slot, ..., literal]."""

    def __init__(self, line, kind, vary_paths):
        self.kind = kind
        spans = []  # (value_start, value_end, slot)
        for m in SLOT_RE.finditer(line):
            if m.group(2) is not None:
                spans.append((m.start(2), m.end(2), ("gseq",)))
            elif m.group(4) is not None:
                spans.append((m.start(4), m.end(4), ("seq",)))
            elif m.group(6) is not None:
                spans.append((m.start(6), m.end(6), ("mach",)))
            elif m.group(8) is not None:
                spans.append((m.start(8), m.end(9), ("time",)))
            elif m.group(12) is not None:
                spans.append((m.start(12), m.end(12), ("pid", int(m.group(12)))))
            elif m.group(14) is not None:
                spans.append((m.start(14), m.end(14), ("pidver", int(m.group(14)))))
        body_at = line.find(b'"event":{')
        if vary_paths and body_at >= 0:
            slot = ("exec_path",) if kind in ("exec", "fork") else ("file_path",)
            for m in PATH_RE.finditer(line, body_at):
                spans.append((m.start(2), m.end(2), slot))
        spans.sort(key=lambda s: s[0])
        parts = []
        pos = 0
        for start, end, slot in spans:
            if start < pos:
                continue  # overlapping (inside a replaced path)
            parts.append(line[pos:start])
            parts.append(slot)
            pos = end
        parts.append(line[pos:])
        self.parts = parts


def kind_of(line):
    try:
        d = json.loads(line)
    except ValueError:
        try:
            d = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return None
    ev = d.get("event") if isinstance(d, dict) else None
    if not isinstance(ev, dict) or not ev:
        return None
    return next(iter(ev))


def load_templates():
    files = [os.path.join(ROOT, "samples", "capture.ndjson")]
    files += sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.ndjson")))
    keychain, unrelated = [], {}
    mix = {}
    seen = set()
    for f in files:
        is_sample = f.endswith("capture.ndjson")
        with open(f, "rb") as fh:
            for raw in fh:
                line = raw.rstrip(b"\r\n")
                if not line.startswith(b"{"):
                    continue
                kind = kind_of(line)
                if kind is None:
                    continue
                rel = any(m in line for m in KEYCHAIN_MARKERS) or (
                    kind == "exec" and SECURITY_EXEC in line
                )
                if not rel and is_sample:
                    mix[kind] = mix.get(kind, 0) + 1
                if line in seen:
                    continue
                seen.add(line)
                if rel:
                    keychain.append(Template(line, kind, vary_paths=False))
                else:
                    unrelated.setdefault(kind, []).append(Template(line, kind, vary_paths=True))
    # Only kinds that have templates.
    mix = {k: v for k, v in mix.items() if k in unrelated}
    return keychain, unrelated, mix


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, required=True, help="target size, MB = 10^6 bytes")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keychain-share", type=float, default=0.01)
    ap.add_argument("--exec-share", type=float, default=None,
                    help="share of exec+fork among unrelated events (default: the sample's)")
    ap.add_argument("--events-per-second", type=float, default=20000.0,
                    help="simulated event rate (spacing of the `time` fields)")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    keychain, unrelated, mix = load_templates()
    if a.exec_share is not None:
        ef = sum(mix.get(k, 0) for k in ("exec", "fork"))
        other = sum(v for k, v in mix.items() if k not in ("exec", "fork"))
        for k in list(mix):
            if k in ("exec", "fork"):
                mix[k] = a.exec_share * mix[k] / max(ef, 1)
            else:
                mix[k] = (1 - a.exec_share) * mix[k] / max(other, 1)
    kinds = sorted(mix)
    weights = [mix[k] for k in kinds]

    target = int(a.size_mb * 1_000_000)
    base = 1754580000  # 2025-08-07T15:20:00Z
    period_ns = int(1e9 / a.events_per_second)
    gseq = 1
    mach = 283813705213
    written = 0
    lines = 0
    counts = {}
    # Precomputed path bytes.
    file_paths = [esc(f"{d}/{n}") for d in FILE_DIRS for n in FILE_NAMES]
    exec_paths = [esc(p) for p in EXEC_PATHS]
    cached_sec = None
    cached_str = b""
    t0 = time.time()
    with open(a.out, "wb", buffering=4 * 1024 * 1024) as out:
        batch = []
        batch_bytes = 0
        while written < target:
            if rng.random() < a.keychain_share:
                t = rng.choice(keychain)
                label = "keychain"
            else:
                k = rng.choices(kinds, weights)[0]
                t = rng.choice(unrelated[k])
                label = k
            counts[label] = counts.get(label, 0) + 1
            ns = gseq * period_ns
            sec = base + ns // 1_000_000_000
            if sec != cached_sec:
                cached_sec = sec
                cached_str = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
            frac = b"%09d" % (ns % 1_000_000_000)
            pid_delta = rng.randrange(1, 60000)
            pv_delta = rng.randrange(1, 1_000_000)
            mach += rng.randrange(1000, 100000)
            parts = []
            for p in t.parts:
                if type(p) is bytes:
                    parts.append(p)
                    continue
                s = p[0]
                if s == "gseq":
                    parts.append(b"%d" % gseq)
                elif s == "seq":
                    parts.append(b"%d" % gseq)
                elif s == "mach":
                    parts.append(b"%d" % mach)
                elif s == "time":
                    parts.append(cached_str + b"." + frac)
                elif s == "pid":
                    parts.append(b"%d" % (p[1] + pid_delta if p[1] > 1 else p[1]))
                elif s == "pidver":
                    parts.append(b"%d" % (p[1] + pv_delta if p[1] > 0 else p[1]))
                elif s == "file_path":
                    parts.append(file_paths[rng.randrange(len(file_paths))]
                                 + b"%d" % rng.randrange(100000))
                elif s == "exec_path":
                    parts.append(exec_paths[rng.randrange(len(exec_paths))])
            parts.append(b"\n")
            line = b"".join(parts)
            batch.append(line)
            batch_bytes += len(line)
            written += len(line)
            lines += 1
            gseq += 1
            if batch_bytes >= 1 << 20:
                out.write(b"".join(batch))
                batch, batch_bytes = [], 0
        out.write(b"".join(batch))
    print(json.dumps({
        "out": a.out, "bytes": written, "lines": lines,
        "keychain_events": counts.get("keychain", 0),
        "keychain_share": round(counts.get("keychain", 0) / max(lines, 1), 4),
        "exec_fork_share": round((counts.get("exec", 0) + counts.get("fork", 0)) / max(lines, 1), 4),
        "counts": dict(sorted(counts.items())),
        "templates": {"keychain": len(keychain), "unrelated": {k: len(v) for k, v in sorted(unrelated.items())}},
        "seconds": round(time.time() - t0, 1),
    }, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
