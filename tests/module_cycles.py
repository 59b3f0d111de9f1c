#!/usr/bin/env python3
"""Detect module cycles in every crate of the workspace.

Each source file is one module (`foo.rs`, `foo/mod.rs`; a file's inline
`mod tests { .. }` counts as the file). A crate is its root file and the
modules reached from it by `mod name;` declarations, so several crates can
share a folder (the extension package's library `lib.rs`, its CLI `main.rs`
and its `bin/` binary each compile their own set of files). An edge A -> B is recorded when code
in A names an item of B by a `crate::...` path (in a `use` tree, grouped
imports included, or inline in code) or by a top-level `use super::...`.
A parent naming its own child (`mod child; pub use child::X;`) is not an
edge: that is containment. A child naming its parent is an edge, so a child
that reaches back into its parent while the parent uses it is a cycle.

Exit status 1 when any cycle exists that does not run through a module listed
in OWNED_ELSEWHERE (files another branch is still changing; their cycles are
reported, not failed on, until that work is merged). Exit 0 otherwise.

Usage: tests/module_cycles.py [CRATE ...]   (default: every crate)
       tests/module_cycles.py --self-test      (the checker on made-up crates)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# crate name -> source folder and root file (relative to the folder).
CRATES = {
    "tables": ("tables/src", "lib.rs"),
    "sentinel": ("sentinel/src", "lib.rs"),
    # The extension package: its library, the CLI binary over it, and the
    # thin extension binary (which declares no module of its own).
    "extension": ("extension/src", "lib.rs"),
    "extension-cli": ("extension/src", "main.rs"),
    "extension-bin": ("extension/src", "bin/keychain-access-extension.rs"),
}

# Modules whose files other work is still changing (an entry covers its
# submodules too): a cycle that needs one of them is listed but does not fail
# the check. Empty: every cycle fails.
OWNED_ELSEWHERE = {
    "tables": set(),
    "extension": set(),
    "extension-cli": set(),
    "extension-bin": set(),
    "sentinel": set(),
}


def is_owned(module, owned):
    return any(module == o or module.startswith(o + "::") for o in owned)


IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
USE_RE = re.compile(r"\buse\s+([^;]*);", re.S)
INLINE_RE = re.compile(r"\bcrate((?:::" + IDENT + r")+)")


def strip_comments_and_strings(text):
    """Remove // and /* */ comments and string/char literals (keeps line count)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0)) if m else 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [p for p in tree.split(",") if p]
    prefix = tree[:brace]
    depth, parts, start = 0, [], brace + 1
    for k in range(brace, len(tree)):
        ch = tree[k]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                parts.append(tree[start:k])
                rest = tree[k + 1:].lstrip(",")
                break
        elif ch == "," and depth == 1:
            parts.append(tree[start:k])
            start = k + 1
    paths = []
    for part in parts:
        for sub in expand_use_tree(part):
            paths.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    if rest:
        paths.extend(expand_use_tree(rest))
    return paths


MOD_RE = re.compile(r"(?:^|[;{}\s])(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")


def modules_of(src_dir, root_file):
    """Map module path ('' for the crate root, 'a::b') -> file path: the
    root and every file reached from it by `mod name;` (`name.rs` or
    `name/mod.rs` beside a root or `mod.rs`, else in the file's own folder)."""
    mods = {}
    root = os.path.join(src_dir, root_file)
    todo = [("", root)]
    while todo:
        module, path = todo.pop()
        if module in mods or not os.path.exists(path):
            continue
        mods[module] = path
        with open(path, encoding="utf-8") as fh:
            code = strip_comments_and_strings(fh.read())
        here, name = os.path.split(path)
        # A root or mod.rs holds its children beside it; `foo.rs` in `foo/`.
        if module and name != "mod.rs":
            here = os.path.join(here, name[:-3])
        for m in MOD_RE.finditer(code):
            child = m.group(1)
            sub = f"{module}::{child}" if module else child
            for cand in (os.path.join(here, child + ".rs"),
                         os.path.join(here, child, "mod.rs")):
                if os.path.exists(cand):
                    todo.append((sub, cand))
                    break
    return mods


def resolve(target, mods):
    """Longest known module path that prefixes `target` (a::b::Item -> a::b)."""
    parts = target.split("::")
    for k in range(len(parts), 0, -1):
        cand = "::".join(parts[:k])
        if cand in mods:
            return cand
    return ""


def edges_of(module, path, mods):
    with open(path, encoding="utf-8") as fh:
        code = strip_comments_and_strings(fh.read())
    targets = set()
    for m in USE_RE.finditer(code):
        line_start = code.rfind("\n", 0, m.start()) + 1
        # `use super::` inside an inline module (tests) names the file itself.
        indented = code[line_start:m.start()].startswith((" ", "\t"))
        for p in expand_use_tree(m.group(1)):
            p = p.lstrip(":")
            if p.startswith("crate::"):
                targets.add(p[len("crate::"):])
            elif p.startswith("super::") and not indented:
                parent = module.split("::")[:-1]
                rest = p.split("::")
                while rest and rest[0] == "super":
                    rest.pop(0)
                    if rest and rest[0] == "super":
                        parent = parent[:-1]
                targets.add("::".join(parent + rest))
    for m in INLINE_RE.finditer(code):
        targets.add(m.group(1)[2:])
    out = set()
    for t in targets:
        dst = resolve(t, mods)
        if not dst or dst == module:
            continue
        # A parent naming its own descendant is containment, not a dependency.
        if module == "" or dst.startswith(module + "::"):
            continue
        out.add(dst)
    return out


def strongly_connected(graph):
    """Tarjan's algorithm; returns the components with more than one module."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def check(names, crates=None, owned_elsewhere=None, root=ROOT):
    """Print each crate's verdict; True when a cycle must fail the check."""
    crates = CRATES if crates is None else crates
    owned_elsewhere = OWNED_ELSEWHERE if owned_elsewhere is None else owned_elsewhere
    failed = False
    for name in names:
        src, root_file = crates[name]
        mods = modules_of(os.path.join(root, src), root_file)
        graph = {m: edges_of(m, p, mods) for m, p in mods.items()}
        owned = owned_elsewhere.get(name, set())
        comps = strongly_connected(graph)
        crate_failed = False
        if not comps:
            print(f"{name}: {len(mods)} modules, no module cycle")
            continue
        for comp in comps:
            members = set(comp)
            edges = sorted(f"{a} -> {b}" for a in comp for b in graph[a] if b in members)
            # Does a cycle remain without the modules other branches own?
            rest = {a: {b for b in graph[a] if b in members and not is_owned(b, owned)}
                    for a in comp if not is_owned(a, owned)}
            if strongly_connected(rest):
                crate_failed = failed = True
                print(f"{name}: MODULE CYCLE {{{', '.join(comp)}}}: " + "; ".join(edges))
            else:
                print(f"{name}: known cycle through modules another branch still changes "
                      f"({', '.join(m for m in comp if is_owned(m, owned))}), reported only: "
                      + "; ".join(edges))
        if not crate_failed:
            print(f"{name}: {len(mods)} modules, no module cycle outside files owned elsewhere")
    return failed


def self_test():
    """The checker on small made-up crates: each case must get its verdict."""
    import tempfile

    cases = [
        # (files, owned elsewhere, must fail)
        ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;",
          "b.rs": "use crate::{a::Y, c};"}, set(), True),
        ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;",
          "b.rs": "fn f() { crate::a::g(); }"}, set(), True),
        # A grouped, multi-line import.
        ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::{\n    b::{X,\n Z},\n};",
          "b.rs": "pub(crate) use crate::a as _;"}, set(), True),
        # A child reaching back into its parent that uses it.
        ({"lib.rs": "mod p; mod q;", "p/mod.rs": "mod c; use crate::q::Z;",
          "p/c.rs": "use super::Y;", "q.rs": "use crate::p::c::W;"}, set(), True),
        # Downward only; names in comments and strings do not count; a
        # parent re-exporting its child is containment.
        ({"lib.rs": "mod a; mod b; pub use a::X;", "a.rs": "use crate::b::X;",
          "b.rs": "// use crate::a::X;\nconst S: &str = \"crate::a::X\";\n"
                  "#[cfg(test)]\nmod tests {\n    use super::*;\n}"}, set(), False),
        # A cycle that runs through a module another branch owns: reported only.
        ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;",
          "b.rs": "use crate::a::Y;"}, {"b"}, False),
        # A file in the folder that the root does not declare is another
        # crate's (a binary beside the library): its cycle is not this one's.
        ({"lib.rs": "pub mod a;", "a.rs": "pub fn f() {}",
          "c.rs": "use crate::d::X;", "d.rs": "use crate::c::Y;"}, set(), False),
    ]
    bad = 0
    for i, (files, owned, want_fail) in enumerate(cases):
        with tempfile.TemporaryDirectory() as d:
            for rel, text in files.items():
                path = os.path.join(d, "src", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            got = check(["case"], {"case": ("src", "lib.rs")}, {"case": owned}, root=d)
        if got != want_fail:
            bad += 1
            print(f"self-test case {i}: expected {'a failing cycle' if want_fail else 'a pass'}")
    # The same folder seen from a second root that declares those files
    # (`main.rs` beside `lib.rs`), and a child module in its parent's folder
    # (`p.rs` + `p/c.rs`): both must be found.
    checks = len(cases)
    two_roots = {"lib.rs": "pub mod a;", "a.rs": "", "main.rs": "mod c; mod d; mod p;",
                 "c.rs": "use crate::d::X;", "d.rs": "", "p.rs": "mod k;",
                 "p/k.rs": "use crate::c::Z;"}
    for root_file, must_fail, want in [("lib.rs", False, {"", "a"}),
                                       ("main.rs", False, {"", "c", "d", "p", "p::k"})]:
        with tempfile.TemporaryDirectory() as d:
            for rel, text in two_roots.items():
                path = os.path.join(d, "src", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            got_mods = set(modules_of(os.path.join(d, "src"), root_file))
            got = check(["case"], {"case": ("src", root_file)}, {"case": set()}, root=d)
        checks += 1
        if got != must_fail or got_mods != want:
            bad += 1
            print(f"self-test root {root_file}: modules {sorted(got_mods)}, want {sorted(want)}")
    print(f"module_cycles self-test: {checks - bad} of {checks} cases right")
    return 1 if bad else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    return 1 if check(argv[1:] or list(CRATES)) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
