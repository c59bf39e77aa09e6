"""NFS-001 and NFS-002 on hand-made facts: every status, and the catalogue rules."""

from __future__ import annotations

from dicomguard.checks import nfs_001_export_to_everyone as nfs_001
from dicomguard.checks import nfs_002_exports_listed as nfs_002
from dicomguard.checks.base import Check, validate_registry
from dicomguard.models import Severity, Status
from dicomguard.probes.nfs import NfsExport, NfsFacts


def facts(*exports: NfsExport, listed: bool = True, **kw: object) -> NfsFacts:
    return NfsFacts(address="10.0.0.5", portmapper_port=111, portmapper=True,
                    exports_listed=listed, exports=exports, mountd_port=635,
                    mountd_version=3, **kw)  # type: ignore[arg-type]


RESTRICTED = NfsExport("/srv/pacs", ("10.20.0.0/16",), world=False)
WORLD = NfsExport("/srv/images", ("*",), world=True, world_reason="group '*' matches every host")


def test_metadata_is_valid() -> None:
    validate_registry((Check(nfs_001.META, nfs_001.evaluate),
                       Check(nfs_002.META, nfs_002.evaluate)))
    assert nfs_001.META.severity is Severity.HIGH and nfs_002.META.severity is Severity.LOW
    assert not nfs_001.META.intrusive and not nfs_002.META.intrusive


def test_world_export_fails_with_evidence() -> None:
    out = nfs_001.evaluate(facts(RESTRICTED, WORLD))
    assert out.status is Status.FAIL
    assert out.evidence["exports"] == [
        {"path": "/srv/images", "groups": ["*"], "reason": "group '*' matches every host"}]
    assert out.evidence["mountable_by_anyone"] == ["10.0.0.5:/srv/images"]
    assert out.evidence["exports_listed"] == 2


def test_restricted_exports_pass() -> None:
    assert nfs_001.evaluate(facts(RESTRICTED)).status is Status.PASS
    assert nfs_002.evaluate(facts(RESTRICTED)).status is Status.FAIL
    assert nfs_002.evaluate(facts()).status is Status.PASS     # an empty list discloses nothing


def test_unknown_and_error() -> None:
    none = facts(listed=False)
    assert nfs_001.evaluate(none).status is Status.UNKNOWN
    assert nfs_002.evaluate(none).status is Status.UNKNOWN
    broken = facts(listed=False, error="mountd: no RPC reply within 5 s",
                   errors=("mountd: no RPC reply within 5 s",))
    for check in (nfs_001, nfs_002):
        out = check.evaluate(broken)
        assert out.status is Status.ERROR and out.error == "mountd: no RPC reply within 5 s"
    refused = facts(listed=False, exports_refused="authentication error: too weak")
    assert nfs_001.evaluate(refused).status is Status.UNKNOWN
    assert nfs_002.evaluate(refused).status is Status.PASS


def test_summary_is_plain_data() -> None:
    import json

    summary = facts(WORLD).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["world_exports"] == 1
