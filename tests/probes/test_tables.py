"""The fingerprint and CVE tables load, validate and match as documented."""

from __future__ import annotations

from dicomguard import vulns
from dicomguard.probes import fingerprint


def test_fingerprint_dcmtk_and_pynetdicom() -> None:
    fp = fingerprint.identify("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")
    assert fp is not None and (fp.product, fp.version, fp.verified) == ("dcmtk", "3.6.7", True)
    fp = fingerprint.identify("1.2.826.0.1.3680043.9.3811.3.0.4", "PYNETDICOM_304")
    assert fp is not None and (fp.product, fp.version) == ("pynetdicom", "3.0.4")
    assert fingerprint.identify("1.2.3.4", "X") is None
    assert fingerprint.identify(None, None) is None


def test_fingerprint_rows_are_wellformed() -> None:
    for rule in fingerprint.rules():
        assert rule.uid_prefix[0].isdigit()
        assert rule.product


def test_version_parsing_and_lookup() -> None:
    assert vulns.parse_version("1.10.1") == (1, 10, 1)
    assert vulns.parse_version("mainline") is None
    assert vulns.lookup("orthanc", "1.11.3")[0].cve == "CVE-2023-33466"
    assert vulns.lookup("Orthanc", "1.12.0") == []
    assert vulns.lookup("dcmtk", "3.6.8") == []
    assert vulns.lookup(None, "1.0") == []
    for v in vulns.table():
        assert v.cve.startswith("CVE-") and v.references


def test_version_forms_and_ranges() -> None:
    assert vulns.parse_version("1.3.5a") == (1, 3, 5, 1)
    assert vulns.parse_version("1.3.6rc2") == (1, 3, 5, 999)
    assert vulns.parse_version("1.3.6rc2") < vulns.parse_version("1.3.6")  # type: ignore[operator]
    assert [v.cve for v in vulns.lookup("ProFTPD", "1.3.5")] == ["CVE-2015-3306",
                                                                  "CVE-2019-12815"]
    assert [v.cve for v in vulns.lookup("ProFTPD", "1.3.5a")] == ["CVE-2019-12815"]
    # the 2.3.4 backdoor is a range of one version, not "everything older"
    assert "CVE-2011-2523" in [v.cve for v in vulns.lookup("vsftpd", "2.3.4")]
    assert "CVE-2011-2523" not in [v.cve for v in vulns.lookup("vsftpd", "2.3.2")]
    assert vulns.lookup("vsftpd", "3.0.3") == []
    ev = vulns.evidence(vulns.lookup("Orthanc", "1.10.1"))
    assert ev == [{"cve": "CVE-2023-33466", "fixed_in": "1.12.0", "severity": "high",
                   "summary": ev[0]["summary"]}]
