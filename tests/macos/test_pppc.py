"""The shipped PPPC profile is a valid configuration profile that grants Full
Disk Access to osqueryd and eslogger (checked with Python's plistlib; no Mac
needed). Run: .venv/bin/python -m pytest tests/macos"""
import plistlib
import re
import uuid
from pathlib import Path

PROFILE = Path(__file__).resolve().parents[2] / "packs/macos/keychain-access-pppc.mobileconfig"


def load():
    with PROFILE.open("rb") as f:
        return plistlib.load(f)


def test_top_level_is_a_configuration_profile():
    p = load()
    assert p["PayloadType"] == "Configuration"
    assert p["PayloadScope"] == "System"
    assert p["PayloadVersion"] == 1
    uuid.UUID(p["PayloadUUID"])


def test_pppc_payload_grants_full_disk_access():
    p = load()
    [tcc] = [c for c in p["PayloadContent"] if c["PayloadType"] == "com.apple.TCC.configuration-profile-policy"]
    uuid.UUID(tcc["PayloadUUID"])
    assert tcc["PayloadUUID"] != p["PayloadUUID"]
    entries = tcc["Services"]["SystemPolicyAllFiles"]
    by_id = {e["Identifier"]: e for e in entries}
    osq = by_id["io.osquery.agent"]
    assert osq["IdentifierType"] == "bundleID"
    assert 'identifier "io.osquery.agent"' in osq["CodeRequirement"]
    assert "3522FA9PXF" in osq["CodeRequirement"]
    es = by_id["/usr/bin/eslogger"]
    assert es["IdentifierType"] == "path"
    assert 'identifier "com.apple.eslogger"' in es["CodeRequirement"] and "anchor apple" in es["CodeRequirement"]
    for e in entries:
        assert e["Allowed"] is True
        assert e["Authorization"] == "Allow"
        assert e["StaticCode"] is False


def test_identifiers_are_reverse_dns_and_unique():
    p = load()
    ids = [p["PayloadIdentifier"]] + [c["PayloadIdentifier"] for c in p["PayloadContent"]]
    assert len(set(ids)) == len(ids)
    for i in ids:
        assert re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", i), i
