"""The Sigma rule, converted by pySigma to SQLite and run over keychain_access_events rows.

pytest. Run: .venv/bin/python -m pytest -q tests/sigma   (deps: tests/sigma/requirements.txt)

* The rule (packs/sigma/macos_keychain_credential_access.yml) is converted with the SQLite
  backend of pySigma through the processing pipeline packs/sigma/pipelines/keychain_access_events.yml
  and run with Python's sqlite3 over a table built from
  packs/schema/keychain_access_events.json (the column list is never written here).
* test_fixture_cases: the real fixture rows, tests/fixtures/<case>.expected.jsonl (one JSON
  object per line, keys = column names) for the cases of tests/fixtures/cases.json. Every
  malicious case must have a selected row; every benign case the rule selects must be listed
  in tests/sigma/falsepositive_cases.json, under the label of the falsepositives entry
  explaining it.
  It fails when there are no fixture rows.
* test_dev_rows: tests/sigma/dev_rows.jsonl, SYNTHETIC rows marked with the row each scenario
  must (not) select; it checks the rule's selections and filters, not the scanner.
"""

import json
import pathlib
import re
import sqlite3

import pytest
import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "packs" / "schema" / "keychain_access_events.json"
RULE = ROOT / "packs" / "sigma" / "macos_keychain_credential_access.yml"
PIPELINE = ROOT / "packs" / "sigma" / "pipelines" / "keychain_access_events.yml"
FP_CASES = pathlib.Path(__file__).resolve().parent / "falsepositive_cases.json"
FIXTURES = ROOT / "tests" / "fixtures"
CASES = FIXTURES / "cases.json"
DEV_ROWS = pathlib.Path(__file__).resolve().parent / "dev_rows.jsonl"

TABLE = "keychain_access_events"
TAG = re.compile(r"^([A-Z][A-Za-z0-9 -]*): ")


# ----------------------------------------------------------------------------- helpers


def schema_columns():
    return json.loads(SCHEMA.read_text())["columns"]


def rule_doc():
    return yaml.safe_load(RULE.read_text())


def pipeline():
    return ProcessingPipeline.from_yaml(PIPELINE.read_text())


def convert(rule_text):
    """One rule through the pipeline to a SQLite query over the table."""
    backend = sqliteBackend(processing_pipeline=pipeline(), table=TABLE, collate_nocase=True)
    queries = backend.convert(SigmaCollection.from_yaml(rule_text))
    assert len(queries) == 1, queries
    return queries[0]


def converted_query():
    return convert(RULE.read_text())


def falsepositive_cases():
    return json.loads(FP_CASES.read_text())["cases"]


def _regexp(pattern, value):
    # SQLite evaluates `X REGEXP P` as regexp(P, X); Sigma's `re` is Python-like and case-sensitive.
    return value is not None and re.search(pattern, str(value)) is not None


def run_rule(rows, query):
    """Load rows into a fresh table with the schema's columns; return the selected rows."""
    cols = schema_columns()
    names = [c["name"] for c in cols]
    conn = sqlite3.connect(":memory:")
    conn.create_function("REGEXP", 2, _regexp, deterministic=True)
    conn.execute(f"CREATE TABLE {TABLE} (" + ", ".join(f'{c["name"]} {c["osquery_type"]}' for c in cols) + ")")
    for row in rows:
        unknown = set(row) - set(names)
        assert not unknown, f"row has keys that are not schema columns: {sorted(unknown)}"
        conn.execute(
            f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [row.get(n) for n in names],
        )
    cur = conn.execute(query)
    out_names = [d[0] for d in cur.description]
    selected = [dict(zip(out_names, r)) for r in cur.fetchall()]
    conn.close()
    return selected


def read_jsonl(path):
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"{path}:{n}: not JSON: {e}") from e
    return rows


def load_cases():
    """[(name, label, rows)] from tests/fixtures/cases.json and <name>.expected.jsonl.

    Accepts a list of case objects, {"cases": [...]}, or {name: {...}}; a case is named by
    `name` (or `id`) and labelled by `label` (malicious|benign); its rows are the file named by
    `expected` (relative to tests/fixtures) if given, else tests/fixtures/<name>.expected.jsonl.
    """
    doc = json.loads(CASES.read_text())
    items = doc.get("cases", doc) if isinstance(doc, dict) else doc
    if isinstance(items, dict):
        items = [dict(v, name=k) for k, v in items.items()]
    cases = []
    for case in items:
        name = case.get("name") or case.get("id")
        label = case.get("label")
        assert name and label in ("malicious", "benign"), f"case needs a name and label malicious|benign: {case}"
        path = FIXTURES / case["expected"] if case.get("expected") else FIXTURES / f"{name}.expected.jsonl"
        rows = read_jsonl(path) if path.exists() else []
        cases.append((name, label, rows))
    return cases


def fp_tags(doc):
    """Labels of the falsepositives entries: 'Label: text' -> Label."""
    tags = []
    for entry in doc.get("falsepositives", []):
        m = TAG.match(entry)
        assert m, f"falsepositives entry must start with a capitalised 'Label: ': {entry!r}"
        tags.append(m.group(1))
    return tags


def detection_fields(doc):
    """Every field name the detection uses (modifiers stripped)."""
    fields = set()
    for name, item in doc["detection"].items():
        if name == "condition":
            continue
        for mapping in item if isinstance(item, list) else [item]:
            for key in mapping:
                fields.add(key.split("|")[0])
    return fields


# ----------------------------------------------------------------------------- tests


def test_rule_is_valid_sigma_with_our_metadata():
    doc = rule_doc()
    rule = SigmaRule.from_yaml(RULE.read_text())
    assert rule.title and rule.id and rule.level is not None
    tags = {str(t) for t in rule.tags}
    assert {"attack.credential-access", "attack.t1555.001"} <= tags, tags
    assert rule.logsource.product == "macos"
    assert rule.logsource.service == "keychain_access_events"
    assert doc.get("references")


def test_rule_uses_only_schema_columns():
    names = {c["name"] for c in schema_columns()}
    doc = rule_doc()
    unknown = (detection_fields(doc) | set(doc.get("fields", []))) - names
    assert not unknown, f"fields that are not keychain_access_events columns: {sorted(unknown)}"
    # The portable logic must not lean on the extension's own verdicts.
    assert not detection_fields(doc) & {"severity", "allowlisted", "reveals_secret", "allow_reason"}


def test_falsepositive_mapping_is_well_formed():
    doc = rule_doc()
    tags = fp_tags(doc)
    assert len(tags) == len(set(tags)), "duplicate falsepositives labels"
    assert "falsepositive_cases" not in doc, "SigmaHQ refuses unknown keys: the mapping lives in falsepositive_cases.json"
    mapping = falsepositive_cases()
    assert isinstance(mapping, dict), "falsepositive_cases.json must map labels to case names"
    assert set(mapping) == set(tags), f"tags differ: {sorted(set(mapping) ^ set(tags))}"
    for tag, cases in mapping.items():
        assert isinstance(cases, list) and all(isinstance(c, str) for c in cases), tag
    # The benign patterns named in the brief are covered by an entry.
    text = " ".join(doc["falsepositives"])
    for pattern in ("find-internet-password -g", "deliver.", "JSSCID -w", "Time Machine", "Spotlight"):
        assert pattern in text, pattern


def test_rule_converts_to_sqlite():
    query = converted_query()
    assert query.startswith(f"SELECT * FROM {TABLE} WHERE "), query
    run_rule([], query)  # the SQL is valid against the schema's table


def test_dev_rows():
    """SYNTHETIC rows (dev_rows.jsonl): each must be selected or skipped as marked."""
    query = converted_query()
    rows = [r for r in read_jsonl(DEV_ROWS) if "_dev_case" in r]
    assert rows
    wrong = []
    for row in rows:
        data = {k: v for k, v in row.items() if not k.startswith("_")}
        got = "select" if run_rule([data], query) else "skip"
        if got != row["_dev_expect"]:
            wrong.append(f"{row['_dev_case']}: expected {row['_dev_expect']}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_fixture_cases():
    """The real fixture rows: malicious cases selected, benign selections explained."""
    if not CASES.exists():
        pytest.fail(f"{CASES.relative_to(ROOT)} is missing: no fixture cases to test the Sigma rule on")
    cases = load_cases()
    assert cases, "cases.json lists no cases"
    with_rows = [c for c in cases if c[2]]
    if not with_rows:
        pytest.fail("no fixture rows: tests/fixtures/<case>.expected.jsonl are missing or empty")
    explained = {case: tag for tag, names in falsepositive_cases().items() for case in names}
    known = {name for name, _, _ in cases}
    stale = sorted(set(explained) - known)
    query = converted_query()
    problems = [f"falsepositive_cases.json names cases not in cases.json: {stale}"] if stale else []
    selected_counts = {}
    for name, label, rows in cases:
        selected = run_rule(rows, query) if rows else []
        selected_counts[name] = (label, len(rows), len(selected))
        if label == "malicious" and not selected:
            problems.append(f"malicious case {name}: none of its {len(rows)} rows selected")
        if label == "benign" and selected and name not in explained:
            problems.append(
                f"benign case {name}: {len(selected)} of {len(rows)} rows selected and not listed in "
                f"falsepositive_cases.json (add it under the label that explains it, or tune the rule)"
            )
    summary = ", ".join(f"{n}={l[0]}:{l[2]}/{l[1]}" for n, l in sorted(selected_counts.items()))
    assert not problems, "\n".join(problems) + f"\n(selected/rows per case: {summary})"
