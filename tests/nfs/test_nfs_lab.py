"""The NFS probe and checks against a real NFS-Ganesha (tests/nfs/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess

from dicomguard.checks import nfs_001_export_to_everyone as nfs_001
from dicomguard.checks import nfs_002_exports_listed as nfs_002
from dicomguard.lab.nfs import INVENTED_PATIENT_DIR, NfsLab
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net.connector import Connector
from dicomguard.probes.nfs import NfsConfig, NfsFacts, probe


def run_probe(lab: NfsLab, port: int = 111, **cfg: object) -> NfsFacts:
    async def go() -> NfsFacts:
        connector = Connector(None, per_host=1)
        return await probe(Endpoint(lab.address, port, "nfs"), connector,
                           NfsConfig(**cfg))  # type: ignore[arg-type]
    return asyncio.run(go())


def showmount_exports(showmount: str, address: str) -> dict[str, tuple[str, ...]]:
    """`showmount -e` as {path: groups}; "(everyone)" is an empty group list."""
    out = subprocess.run([showmount, "--no-headers", "-e", address], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    result: dict[str, tuple[str, ...]] = {}
    for line in out.splitlines():
        path, _, groups = line.rstrip().rpartition(" ")
        result[path.strip()] = () if groups == "(everyone)" else tuple(groups.split(","))
    return result


def test_export_list_equals_showmount(nfs_lab: NfsLab, showmount: str) -> None:
    facts = run_probe(nfs_lab, show_phi=True)
    assert facts.error is None, facts.errors
    assert facts.exports_listed
    assert {e.path: e.groups for e in facts.exports} == showmount_exports(
        showmount, nfs_lab.address)
    listed = {e.path for e in nfs_lab.exports if e.listed_to_others}
    assert {e.path for e in facts.exports} == listed


def test_exactly_the_world_exports_are_flagged(nfs_lab: NfsLab) -> None:
    facts = run_probe(nfs_lab, show_phi=True)
    world = {e.path for e in nfs_lab.exports if e.world}
    assert {e.path for e in facts.world_exports} == world
    restricted = nfs_lab.export("cardiology").path
    network = nfs_lab.export("oncology").path
    assert restricted not in {e.path for e in facts.exports}   # Ganesha hides it from us
    assert not any(e.world for e in facts.exports if e.path == network)

    outcome = nfs_001.evaluate(facts)
    assert outcome.status is Status.FAIL
    assert nfs_001.META.severity is Severity.HIGH
    assert {e["path"] for e in outcome.evidence["exports"]} == world
    assert outcome.evidence["world_exports"] == 2
    assert sorted(outcome.evidence["mountable_by_anyone"]) == sorted(
        f"{nfs_lab.address}:{p}" for p in world)
    reasons = {e["path"]: e["reason"] for e in outcome.evidence["exports"]}
    assert "'*'" in reasons[nfs_lab.export("radiology").path]
    assert "empty group list" in reasons[nfs_lab.export("ward7").path]

    listed = nfs_002.evaluate(facts)
    assert listed.status is Status.FAIL
    assert listed.evidence["exports"] == 3


def test_rpc_facts(nfs_lab: NfsLab) -> None:
    facts = run_probe(nfs_lab)
    assert facts.portmapper
    assert facts.portmapper_versions == (2, 3, 4)
    assert {"portmapper", "mountd", "nfs"} <= set(facts.programs)
    assert facts.mountd_port and facts.mountd_version == 3
    assert facts.nfs_port == 2049 and facts.nfs_versions == (3, 4)
    assert facts.nfs_served
    assert facts.errors == ()


def test_same_facts_from_the_nfs_port(nfs_lab: NfsLab) -> None:
    from_111 = run_probe(nfs_lab, 111)
    from_2049 = run_probe(nfs_lab, 2049)
    assert from_2049.exports == from_111.exports
    assert from_2049.nfs_versions == from_111.nfs_versions
    assert from_2049.mountd_port == from_111.mountd_port


def test_paths_shortened_without_show_phi(nfs_lab: NfsLab) -> None:
    facts = run_probe(nfs_lab)
    assert facts.paths_shortened
    text = json.dumps(facts.summary()) + json.dumps(
        [dict(nfs_001.evaluate(facts).evidence), dict(nfs_002.evaluate(facts).evidence)])
    assert INVENTED_PATIENT_DIR not in text
    assert all(e.path.count("/") <= 3 for e in facts.exports)
    # still flagged: the check does not need the full path
    assert nfs_001.evaluate(facts).status is Status.FAIL
    full = run_probe(nfs_lab, show_phi=True)
    assert INVENTED_PATIENT_DIR in json.dumps(full.summary())


def test_out_of_scope_is_a_fact_not_an_exception(nfs_lab: NfsLab) -> None:
    class Nothing:
        def allows(self, address: str) -> bool:
            return False

    async def go() -> NfsFacts:
        return await probe(Endpoint(nfs_lab.address, 111, "nfs"), Connector(Nothing()),
                           NfsConfig())

    facts = asyncio.run(go())
    assert not facts.exports_listed
    assert facts.error is not None and "scope" in facts.error
    assert nfs_001.evaluate(facts).status is Status.ERROR
