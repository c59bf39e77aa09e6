"""Tests for dicomguard.scope: target syntax, files, scanner imports, exclusions, limits, guard.

No test resolves a name other than "localhost": every other name goes through a fake resolver,
and `no_dns` makes any accidental system lookup fail loudly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomguard.errors import OutOfScopeError, ScopeError
from dicomguard.models import Target
from dicomguard.net.connector import Connector
from dicomguard.scope import (
    DEFAULT_LIMIT,
    LARGE_LIMIT,
    AddressBlock,
    ImportedHost,
    NameRef,
    OctetPattern,
    Scope,
    build_scope,
    load_scan_output,
    parse_target_spec,
    read_target_file,
    system_resolver,
)

DATA = Path(__file__).parent / "data" / "scope"

NAMES = {
    "pacs.test": ["10.2.5.5", "2001:db8::5"],
    "ris.test": ["10.2.5.6"],
    "dual.test": ["10.2.5.5", "10.2.5.7"],
}


def fake_resolver(name: str) -> list[str]:
    try:
        return NAMES[name]
    except KeyError:
        raise OSError(f"[Errno -2] Name or service not known: {name}") from None


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host: object, *args: object, **kwargs: object) -> object:
        if host not in ("localhost", "127.0.0.1", "127.0.0.2", "::1", None):
            raise AssertionError(f"test attempted a DNS lookup of {host!r}")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def scope_of(*specs: str, **kwargs: object) -> Scope:
    kwargs.setdefault("resolver", fake_resolver)
    return build_scope(specs, **kwargs)  # type: ignore[arg-type]


def addresses(scope: Scope) -> list[str]:
    return [t.address for t in scope.targets()]


def v4_range(first: str, last: str) -> list[str]:
    a, b = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
    return [str(ipaddress.IPv4Address(i)) for i in range(a, b + 1)]


# ---------------------------------------------------------------------------------------------
# Single specs


def test_single_ipv4_and_ipv6() -> None:
    scope = scope_of("10.0.0.1", "2001:db8::1")
    assert list(scope) == [Target("10.0.0.1"), Target("2001:db8::1")]
    assert scope.size == len(scope) == 2
    assert scope.allows("10.0.0.1") and scope.allows("2001:db8::1")
    assert scope.allows("2001:0db8:0000::0001")  # any spelling of the same IPv6 address
    assert not scope.allows("10.0.0.2") and not scope.allows("2001:db8::2")


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("10.0.0.0/30", "10.0.0.0", "10.0.0.3"),
        ("10.0.0.7/30", "10.0.0.4", "10.0.0.7"),  # non-strict, like nmap
        ("10.0.0.7/32", "10.0.0.7", "10.0.0.7"),
        ("10.0.0.0/24", "10.0.0.0", "10.0.0.255"),
        ("255.255.255.254/31", "255.255.255.254", "255.255.255.255"),
        ("0.0.0.0/31", "0.0.0.0", "0.0.0.1"),
    ],
)
def test_ipv4_cidr(spec: str, first: str, last: str) -> None:
    assert addresses(scope_of(spec)) == v4_range(first, last)


def test_ipv6_cidr() -> None:
    scope = scope_of("2001:db8::/126", "2001:db8::1:0/128")
    assert addresses(scope) == ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3",
                                "2001:db8::1:0"]
    assert scope.allows("2001:db8::3") and not scope.allows("2001:db8::4")
    assert scope_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127").size == 2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("10.0.0.1-3", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        ("10.0.0.1,3,5", ["10.0.0.1", "10.0.0.3", "10.0.0.5"]),
        ("10.0.0.5,1,3,3", ["10.0.0.1", "10.0.0.3", "10.0.0.5"]),
        ("10.0.1-2.7", ["10.0.1.7", "10.0.2.7"]),
        ("10.0.1-2.1,254", ["10.0.1.1", "10.0.1.254", "10.0.2.1", "10.0.2.254"]),
        ("10.0.0.253-", ["10.0.0.253", "10.0.0.254", "10.0.0.255"]),
        ("10.0.0.-2", ["10.0.0.0", "10.0.0.1", "10.0.0.2"]),
        ("10.0.0.0-0", ["10.0.0.0"]),
        ("10.0.0.255", ["10.0.0.255"]),
        ("10.0.0.1-2,4-5", ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"]),
        ("10.0.0.1-10.0.0.3", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        ("10.0.0.255-10.0.1.0", ["10.0.0.255", "10.0.1.0"]),
        ("2001:db8::fe-2001:db8::101",
         ["2001:db8::fe", "2001:db8::ff", "2001:db8::100", "2001:db8::101"]),
    ],
)
def test_ranges(spec: str, expected: list[str]) -> None:
    assert addresses(scope_of(spec)) == expected


def test_octet_ranges_multi() -> None:
    scope = scope_of("10.0.1-3.1-254")
    assert scope.size == 3 * 254
    assert scope.allows("10.0.2.1") and scope.allows("10.0.3.254")
    assert not scope.allows("10.0.2.0") and not scope.allows("10.0.2.255")
    assert not scope.allows("10.0.4.1") and not scope.allows("10.0.0.1")
    assert addresses(scope)[:2] == ["10.0.1.1", "10.0.1.2"]


def test_wildcards_and_full_octets() -> None:
    assert scope_of("10.0.0.*").size == 256
    assert scope_of("10.0.0.-").size == 256
    assert scope_of("10.0.0-1.*").size == 512
    assert addresses(scope_of("10.0.0-1.*")) == v4_range("10.0.0.0", "10.0.1.255")


def test_parse_target_spec_shapes() -> None:
    (spec,) = parse_target_spec("10.0.0.0/24")
    assert spec.what == AddressBlock(4, int(ipaddress.IPv4Address("10.0.0.0")),
                                     int(ipaddress.IPv4Address("10.0.0.255")))
    assert spec.ports is None
    (spec,) = parse_target_spec("10.0.1-2.5")
    assert spec.what == OctetPattern(((10,), (0,), (1, 2), (5,)))
    (spec,) = parse_target_spec("pacs.test:104")
    assert spec.what == NameRef("pacs.test") and spec.ports == (104,)
    (spec,) = parse_target_spec("pacs.test/30")
    assert spec.what == NameRef("pacs.test", 30)
    specs = parse_target_spec("  10.0.0.1\t[2001:db8::1]:104\n host-1.test ")
    assert [s.text for s in specs] == ["10.0.0.1", "[2001:db8::1]:104", "host-1.test"]


# ---------------------------------------------------------------------------------------------
# Names


def test_names_resolve_to_all_addresses_with_host() -> None:
    scope = scope_of("pacs.test")
    assert list(scope) == [Target("10.2.5.5", "pacs.test"), Target("2001:db8::5", "pacs.test")]


def test_name_with_prefix() -> None:
    scope = scope_of("ris.test/30")
    assert addresses(scope) == v4_range("10.2.5.4", "10.2.5.7")


def test_unresolvable_name_is_a_scope_error() -> None:
    with pytest.raises(ScopeError, match=r"cannot resolve host name 'nowhere\.test'"):
        scope_of("nowhere.test")


def test_resolver_returning_nothing_or_junk() -> None:
    with pytest.raises(ScopeError, match="resolved to no address"):
        build_scope(["x.test"], resolver=lambda name: [])
    with pytest.raises(ScopeError, match="not an IP address"):
        build_scope(["x.test"], resolver=lambda name: ["not-an-ip"])


def test_numeric_looking_text_never_goes_to_dns() -> None:
    calls: list[str] = []

    def recording(name: str) -> list[str]:
        calls.append(name)
        return ["10.0.0.1"]

    for bad in ("10.0.0.256", "127.1", "10.0.0", "1.2.3.4.5", "12345", "0x7f.0.0.1"):
        with pytest.raises(ScopeError, match="invalid target"):
            build_scope([bad], resolver=recording)
    assert calls == []


def test_default_resolver_localhost() -> None:
    found = system_resolver("localhost")
    assert found and all(ipaddress.ip_address(a).is_loopback for a in found)
    scope = build_scope(["localhost"])
    assert scope.allows("127.0.0.1") or scope.allows("::1")
    assert {t.host for t in scope} == {"localhost"}


# ---------------------------------------------------------------------------------------------
# Ports


def test_host_port_forms() -> None:
    scope = scope_of("10.0.0.1:104", "10.0.0.2:104,11112", "[2001:db8::1]:4242",
                     "ris.test:104-106", "10.0.1.0/31:11112")
    assert list(scope) == [
        Target("10.0.0.1", None, (104,)),
        Target("10.0.0.2", None, (104, 11112)),
        Target("10.0.1.0", None, (11112,)),
        Target("10.0.1.1", None, (11112,)),
        Target("10.2.5.6", "ris.test", (104, 105, 106)),
        Target("2001:db8::1", None, (4242,)),
    ]


def test_ports_merge_and_wider_request_wins() -> None:
    merged = scope_of("10.0.0.1:104", "10.0.0.1:11112")
    assert list(merged) == [Target("10.0.0.1", None, (104, 11112))]
    wider = scope_of("10.0.0.0/30", "10.0.0.1:104")
    assert [t.ports for t in wider] == [(), (), (), ()]
    # only the overlapping address is affected
    split = scope_of("10.0.0.1:104", "10.0.0.1-2:105")
    assert list(split) == [Target("10.0.0.1", None, (104, 105)), Target("10.0.0.2", None, (105,))]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("10.0.0.1:", "empty port list"),
        ("10.0.0.1:0", "out of range"),
        ("10.0.0.1:65536", "out of range"),
        ("10.0.0.1:http", "bad port"),
        ("10.0.0.1:105-104", "reversed port range"),
        ("[2001:db8::1]104", "unexpected"),
        ("[2001:db8::1", "missing"),
        ("[10.0.0.1]:104", "only for IPv6"),
        ("2001:db8::1-ff", "not a valid IPv6 address"),
    ],
)
def test_bad_ports_and_brackets(spec: str, reason: str) -> None:
    with pytest.raises(ScopeError, match=reason) as info:
        scope_of(spec)
    assert repr(spec) in str(info.value)


# ---------------------------------------------------------------------------------------------
# Invalid specs


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("10.0.0.256", "out of range 0-255"),
        ("10.0.0.1-256", "out of range 0-255"),
        ("256.0.0.1", "out of range 0-255"),
        ("10.0.0.50-1", "reversed octet range"),
        ("10.0.0.9-10.0.0.1", "reversed range"),
        ("10.0.0.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("10.0.0.1-10.0.0.300", "not an IP address"),
        ("10.0.0.01", "leading zero"),
        ("10.0.0", "4 octets"),
        ("10.0.0.1/33", "longer than /32"),
        ("2001:db8::/129", "longer than /128"),
        ("10.0.0.1/x", "bad prefix length"),
        ("10.0.0.1/", "bad prefix length"),
        ("fe80::1%eth0", "zone IDs"),
        ("10.0.0.,", "empty octet"),
        ("10.0.0.1--2", "bad octet"),
        ("bad_host!", "not an IP address, CIDR block, range or host name"),
        ("-.test/8", "neither an IP address nor a host name"),
    ],
)
def test_invalid_specs_name_the_spec_and_reason(spec: str, reason: str) -> None:
    with pytest.raises(ScopeError, match=reason) as info:
        scope_of(spec)
    assert str(info.value).startswith(f"invalid target {spec!r}")
    assert type(info.value) is ScopeError


def test_empty_spec_text() -> None:
    with pytest.raises(ScopeError, match="empty"):
        parse_target_spec("   ")


# ---------------------------------------------------------------------------------------------
# Size limits


def test_zero_prefix_refused_even_with_allow_large() -> None:
    for spec in ("0.0.0.0/0", "::/0"):
        for allow_large in (False, True):
            with pytest.raises(ScopeError, match="even with --allow-large"):
                scope_of(spec, allow_large=allow_large)


def test_giant_ipv6_prefix_refused_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(ScopeError, match=r"covers 18,446,744,073,709,551,616 addresses"):
        scope_of("2001:db8::/64", allow_large=True)
    assert time.perf_counter() - start < 0.5


def test_default_limit_and_allow_large() -> None:
    assert scope_of("10.0.0.0/16").size == DEFAULT_LIMIT
    with pytest.raises(ScopeError, match=r"more than 65,536 addresses.*--allow-large"):
        scope_of("10.0.0.0/15")
    with pytest.raises(ScopeError, match="more than 65,536"):
        scope_of("10.0.0.0/16", "10.1.0.0")  # the total counts, not each spec
    start = time.perf_counter()
    big = scope_of("10.0.0.0/8", allow_large=True)
    assert big.size == LARGE_LIMIT
    assert big.allows("10.255.255.255") and not big.allows("11.0.0.0")
    assert time.perf_counter() - start < 0.5  # sized without expansion
    with pytest.raises(ScopeError, match="even with --allow-large"):
        scope_of("10.0.0.0/7", allow_large=True)
    with pytest.raises(ScopeError, match="the most any scan may cover"):
        scope_of("10.0.0.0/8", "11.0.0.0", allow_large=True)


def test_limit_counts_after_exclusions_and_duplicates() -> None:
    scope = scope_of("10.0.0.0/15", exclude=["10.1.0.0/16"])
    assert scope.size == DEFAULT_LIMIT
    assert scope_of("10.0.0.0/16", "10.0.0.0/16", "10.0.128.0/17").size == DEFAULT_LIMIT


def test_fragmented_pattern_is_refused_quickly_over_limit() -> None:
    start = time.perf_counter()
    with pytest.raises(ScopeError, match="more than 65,536"):
        scope_of("10.0-255.0-255.1,3")  # 131,072 addresses in 131,072 pieces
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------------------------
# Deduplication and exclusions


def test_duplicates_are_removed() -> None:
    scope = scope_of("10.0.0.1", "10.0.0.1", "10.0.0.0/30", "10.0.0.2-3", "pacs.test",
                     "10.2.5.5", "::ffff:10.0.0.1")
    assert addresses(scope) == ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.2.5.5",
                                "2001:db8::5"]
    assert scope.size == 6


def test_exclusions_punch_holes() -> None:
    scope = scope_of("10.0.0.0/28", exclude=["10.0.0.0", "10.0.0.4-6", "10.0.0.12/30"])
    assert addresses(scope) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7", "10.0.0.8",
                                "10.0.0.9", "10.0.0.10", "10.0.0.11"]
    assert scope.size == 8
    for excluded in ("10.0.0.0", "10.0.0.5", "10.0.0.15"):
        assert not scope.allows(excluded)


def test_exclusion_syntax_names_and_patterns() -> None:
    scope = scope_of("10.2.5.0/29", "2001:db8::/125",
                     exclude=["pacs.test", "10.2.5.0-1,7", "2001:db8::1-2001:db8::2"])
    assert addresses(scope) == ["10.2.5.2", "10.2.5.3", "10.2.5.4", "10.2.5.6", "2001:db8::",
                                "2001:db8::3", "2001:db8::4", "2001:db8::6", "2001:db8::7"]


def test_exclusion_larger_than_targets_and_empty_scope() -> None:
    scope = scope_of("10.0.0.0/24", exclude=["0.0.0.0/0"])
    assert scope.size == 0 and list(scope) == [] and not scope
    assert "empty scope" in scope.describe()
    assert not scope.allows("10.0.0.1")


def test_exclusions_reject_ports_and_bad_syntax() -> None:
    with pytest.raises(ScopeError, match=r"invalid exclusion '10\.0\.0\.1:104'.*cannot carry"):
        scope_of("10.0.0.0/24", exclude=["10.0.0.1:104"])
    with pytest.raises(ScopeError, match=r"invalid exclusion '10\.0\.0\.300'"):
        scope_of("10.0.0.0/24", exclude=["10.0.0.300"])
    with pytest.raises(ScopeError, match="pieces"):
        scope_of("10.0.0.0/24", exclude=["0-255.0-255.0-255.1,3"])


def test_ipv4_mapped_ipv6_is_the_ipv4_address() -> None:
    scope = scope_of("::ffff:10.0.0.1", "10.0.0.2", exclude=["::ffff:10.0.0.2"])
    assert addresses(scope) == ["10.0.0.1"]
    assert scope.allows("::ffff:10.0.0.1") and scope.allows("::ffff:a00:1")
    assert not scope.allows("::ffff:10.0.0.2") and not scope.allows("10.0.0.2")
    # a block straddling the mapped range is split between the families
    low = scope_of("::fffe:ffff:fffe-::ffff:0.0.0.1")
    assert addresses(low) == ["0.0.0.0", "0.0.0.1", "::fffe:ffff:fffe", "::fffe:ffff:ffff"]
    high = scope_of("::ffff:255.255.255.254-::1:0:0:1")
    assert addresses(high) == ["255.255.255.254", "255.255.255.255", "::1:0:0:0", "::1:0:0:1"]
    assert high.allows("::ffff:255.255.255.255") and not high.allows("::ffff:0.0.0.0")


# ---------------------------------------------------------------------------------------------
# allows()


@pytest.mark.parametrize(
    "address",
    ["localhost", "", " 10.0.0.1", "10.0.0.1 ", "10.0.0.01", "012.0.0.1", "10.1", "0x0a000001",
     "167772161", "10.0.0.1:104", "[10.0.0.1]", "10.0.0.0/24"],
)
def test_allows_refuses_anything_but_a_literal(address: str) -> None:
    scope = scope_of("10.0.0.0/24", "10.0.0.0-255")
    assert not scope.allows(address)
    assert address not in scope


def test_allows_ignores_non_strings() -> None:
    scope = scope_of("10.0.0.1")
    assert not scope.allows(167772161)  # type: ignore[arg-type]
    assert 167772161 not in scope
    assert "10.0.0.1" in scope


def test_allows_boundaries() -> None:
    scope = scope_of("10.0.0.10-20", "10.0.0.30", "2001:db8::8/126")
    for address, expected in [("10.0.0.9", False), ("10.0.0.10", True), ("10.0.0.20", True),
                              ("10.0.0.21", False), ("10.0.0.30", True), ("10.0.0.31", False),
                              ("0.0.0.0", False), ("255.255.255.255", False),
                              ("2001:db8::7", False), ("2001:db8::8", True),
                              ("2001:db8::b", True), ("2001:db8::c", False), ("::", False)]:
        assert scope.allows(address) is expected, address


# ---------------------------------------------------------------------------------------------
# Files


def test_target_file_with_comments() -> None:
    assert read_target_file(DATA / "targets.txt") == [
        ("10.2.0.1", f"{DATA / 'targets.txt'}:3"),
        ("10.2.0.2", f"{DATA / 'targets.txt'}:3"),
        ("10.2.1.0/30", f"{DATA / 'targets.txt'}:4"),
        ("pacs.test:104,11112", f"{DATA / 'targets.txt'}:5"),
        ("[2001:db8::7]:4242", f"{DATA / 'targets.txt'}:6"),
    ]
    scope = build_scope((), target_files=[DATA / "targets.txt"],
                        exclude_files=[DATA / "exclude.txt"], resolver=fake_resolver)
    assert list(scope) == [
        Target("10.2.0.1"), Target("10.2.0.2"), Target("10.2.1.0"), Target("10.2.1.1"),
        Target("10.2.1.3"),
        Target("10.2.5.5", "pacs.test", (104, 11112)),
        Target("2001:db8::5", "pacs.test", (104, 11112)),
        Target("2001:db8::7", None, (4242,)),
    ]
    assert scope.specs[0] == "10.2.0.1" and scope.excludes == ("10.2.1.2",)


def test_target_file_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.txt"
    bad.write_text("10.0.0.1\n\n# fine\n10.0.0.2 10.0.0.999\n")
    with pytest.raises(ScopeError, match=r"invalid target '10\.0\.0\.999' \(.*t\.txt:4\)"):
        build_scope((), target_files=[bad], resolver=fake_resolver)
    with pytest.raises(ScopeError, match="cannot read target file"):
        build_scope((), target_files=[tmp_path / "missing.txt"])
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"10.0.0.1\n\xff\xfe\n")
    with pytest.raises(ScopeError, match="not UTF-8"):
        build_scope((), exclude_files=[binary])


def test_a_lone_string_is_one_spec_line() -> None:
    scope = build_scope("10.0.0.1 10.0.0.2", resolver=fake_resolver)
    assert addresses(scope) == ["10.0.0.1", "10.0.0.2"]


# ---------------------------------------------------------------------------------------------
# nmap and masscan output


def test_nmap_xml() -> None:
    hosts = load_scan_output(DATA / "nmap.xml")
    assert hosts == [
        ImportedHost("10.1.2.1", (104, 11112), "pacs.test"),  # user name preferred over PTR
        ImportedHost("10.1.2.3", (), "modality-3.hospital.test"),  # up, nothing open
        ImportedHost("2001:db8::104", (104,), None),
    ]  # down host, <hosthint>, MAC address, UDP and closed/filtered ports are ignored
    scope = build_scope((), nmap_xml=[DATA / "nmap.xml"], resolver=fake_resolver)
    assert list(scope) == [
        Target("10.1.2.1", "pacs.test", (104, 11112)),
        Target("10.1.2.3", "modality-3.hospital.test", ()),
        Target("2001:db8::104", None, (104,)),
    ]
    assert not scope.allows("10.1.2.4") and not scope.allows("10.1.2.9")
    assert "3 imported hosts" in scope.describe()


def test_nmap_grepable() -> None:
    assert load_scan_output(DATA / "nmap.gnmap") == [
        ImportedHost("10.1.2.1", (104, 11112), "pacs-01.hospital.test"),
        ImportedHost("10.1.2.3", (), None),
    ]


@pytest.mark.parametrize("name", ["masscan.lst", "masscan.json", "masscan.xml", "masscan.gnmap"])
def test_masscan_formats(name: str) -> None:
    hosts = load_scan_output(DATA / name)
    assert hosts == [ImportedHost("10.1.3.7", (104, 11112)), ImportedHost("10.1.3.8", (4242,))]
    scope = build_scope((), masscan=[DATA / name], resolver=fake_resolver)
    assert list(scope) == [Target("10.1.3.7", None, (104, 11112)),
                           Target("10.1.3.8", None, (4242,))]
    assert not scope.allows("10.1.3.9")  # UDP only


def test_masscan_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson"
    path.write_text('{"ip": "10.1.3.7", "ports": [{"port": 104, "proto": "tcp", '
                    '"status": "open"}]}\n{"ip": "10.1.3.8", "ports": [{"port": 80, '
                    '"proto": "tcp", "status": "open"}]}\n')
    assert load_scan_output(path) == [ImportedHost("10.1.3.7", (104,)),
                                      ImportedHost("10.1.3.8", (80,))]


def test_imports_combine_with_specs_and_exclusions() -> None:
    scope = build_scope(["10.1.3.7", "10.1.2.1:4242"], exclude=["10.1.3.8"],
                        masscan=[DATA / "masscan.lst"], nmap_xml=[DATA / "nmap.xml"],
                        resolver=fake_resolver)
    assert list(scope) == [
        Target("10.1.2.1", "pacs.test", (104, 4242, 11112)),
        Target("10.1.2.3", "modality-3.hospital.test", ()),
        Target("10.1.3.7", None, ()),  # named without ports too: the scan's ports
        Target("2001:db8::104", None, (104,)),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
         ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n]>\n<nmaprun>&lol2;</nmaprun>\n', "refusing"),
        ('<?xml version="1.0"?>\n<!DOCTYPE nmaprun SYSTEM "file:///etc/passwd">\n'
         "<nmaprun></nmaprun>\n", "refusing"),
        ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]>\n'
         "<nmaprun>&e;</nmaprun>\n", "refusing"),
        ("<nmaprun><host>", "not well-formed"),
        ("<html><body/></html>", "not nmap or masscan"),
        ('<nmaprun><host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/>'
         '<ports><port protocol="tcp" portid="99999"><state state="open"/></port></ports>'
         "</host></nmaprun>", "out of range"),
        ("open tcp 80\n", "not a masscan -oL record"),
        ("hello world\n", "not a masscan -oL record"),
        ('[{"ip": "10.0.0.1", "ports": 7}]', "bad 'ports'"),
        ('{"ip": "10.0.0.1", "ports": [{"port": 80, "proto": "tcp", "status": "open"}\n'
         '{"ip": broken\n', "not a JSON record"),
    ],
)
def test_bad_scan_output(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "scan.out"
    path.write_text(content)
    with pytest.raises(ScopeError, match=message):
        build_scope((), nmap_xml=[path])


def test_bad_address_in_scan_output(tmp_path: Path) -> None:
    path = tmp_path / "scan.lst"
    path.write_text("open tcp 104 10.0.0.300 1709546400\n")
    with pytest.raises(ScopeError, match=r"'10\.0\.0\.300' is not an IP address"):
        build_scope((), masscan=[path])


def test_empty_masscan_list_is_an_empty_import(tmp_path: Path) -> None:
    path = tmp_path / "scan.lst"
    path.write_text("#masscan\n# end\n")
    assert load_scan_output(path) == []


# ---------------------------------------------------------------------------------------------
# describe()


def test_describe() -> None:
    scope = scope_of("10.0.0.0/24", "2001:db8::/127", exclude=["10.0.0.0"])
    assert scope.describe() == "257 addresses (255 IPv4, 2 IPv6) from 2 specs, 1 exclusion"
    assert scope_of("10.0.0.1").describe() == "1 address (1 IPv4) from 1 spec"
    assert "Scope" in repr(scope)


# ---------------------------------------------------------------------------------------------
# Properties

UNIVERSE_V4 = int(ipaddress.IPv4Address("10.0.0.0"))  # properties live in 10.0.0.0/22
UNIVERSE_V6 = int(ipaddress.IPv6Address("2001:db8::"))  # and 2001:db8::/118


@st.composite
def cidrs(draw: st.DrawFn, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(bits - 10, bits))
    offset = draw(st.integers(0, 1023)) >> (bits - prefix) << (bits - prefix)
    base = UNIVERSE_V4 if version == 4 else UNIVERSE_V6
    return ipaddress.ip_network((base + offset, prefix)) if version == 4 else (
        ipaddress.IPv6Network((base + offset, prefix)))


def covered(nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> set[int]:
    return {int(a) for net in nets for a in (net.network_address, *net.hosts(),
                                             net.broadcast_address)}


@pytest.mark.parametrize("version", [4, 6])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_union_minus_exclusions(version: int, data: st.DataObject) -> None:
    specs = data.draw(st.lists(cidrs(version), min_size=1, max_size=6))
    excludes = data.draw(st.lists(cidrs(version), max_size=4))
    scope = build_scope([str(n) for n in specs], exclude=[str(n) for n in excludes],
                        resolver=fake_resolver)
    expected = covered(specs) - covered(excludes)
    got = [int(ipaddress.ip_address(t.address)) for t in scope.targets()]
    assert len(got) == len(set(got)) == scope.size
    assert set(got) == expected
    assert got == sorted(got)
    base = UNIVERSE_V4 if version == 4 else UNIVERSE_V6
    ip = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    for value in range(base - 2, base + 1026):
        assert scope.allows(str(ip(value))) is (value in expected)


octet_sets = st.sets(st.integers(0, 255), min_size=1, max_size=12)


def octet_text(values: set[int], style: int) -> str:
    """Write an octet set as nmap would accept it: runs as a-b, or every value listed."""
    ordered = sorted(values)
    if style == 0:
        return ",".join(str(v) for v in reversed(ordered))
    runs: list[list[int]] = []
    for v in ordered:
        if runs and runs[-1][1] == v - 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


@settings(max_examples=200, deadline=None)
@given(last=octet_sets, third=st.sets(st.integers(0, 255), min_size=1, max_size=3),
       style=st.integers(0, 1))
def test_property_octet_range_round_trip(last: set[int], third: set[int], style: int) -> None:
    text = f"10.7.{octet_text(third, style)}.{octet_text(last, style)}"
    (spec,) = parse_target_spec(text)
    if len(third) * len(last) > 1:
        assert spec.what == OctetPattern(((10,), (7,), tuple(sorted(third)), tuple(sorted(last))))
    else:  # one address is an address
        assert isinstance(spec.what, AddressBlock) and spec.what.size == 1
    scope = build_scope([text], resolver=fake_resolver)
    expected = [f"10.7.{c}.{d}" for c in sorted(third) for d in sorted(last)]
    assert addresses(scope) == expected
    assert scope.size == len(expected)
    for c in range(256):
        assert scope.allows(f"10.7.{c}.{min(last)}") is (c in third)


@settings(max_examples=100, deadline=None)
@given(specs=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 40), st.booleans()),
                      min_size=1, max_size=6),
       excludes=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 40)), max_size=3))
def test_property_mixed_ranges_and_patterns(
    specs: list[tuple[int, int, bool]], excludes: list[tuple[int, int]]
) -> None:
    """Full ranges and octet patterns, overlapping, with exclusions, agree with a set model."""
    def text(start: int, length: int, as_pattern: bool) -> tuple[str, set[int]]:
        first, last = UNIVERSE_V4 + start, UNIVERSE_V4 + start + length
        if as_pattern:  # the same third octet, last octets start..start+length clipped to 255
            a = ipaddress.IPv4Address(first).packed
            hi = min(a[3] + length, 255)
            return (f"{a[0]}.{a[1]}.{a[2]}.{a[3]}-{hi}",
                    set(range(first, first + hi - a[3] + 1)))
        return (f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}",
                set(range(first, last + 1)))

    spec_texts, expected = [], set()
    for start, length, as_pattern in specs:
        t, values = text(start, length, as_pattern)
        spec_texts.append(t)
        expected |= values
    ex_texts = []
    for start, length in excludes:
        t, values = text(start, length, False)
        ex_texts.append(t)
        expected -= values
    scope = build_scope(spec_texts, exclude=ex_texts, resolver=fake_resolver)
    got = [int(ipaddress.IPv4Address(t.address)) for t in scope]
    assert got == sorted(expected)
    assert scope.size == len(expected)


# ---------------------------------------------------------------------------------------------
# Memory and speed


def test_iterating_a_slash_16_is_lazy_and_fast() -> None:
    tracemalloc.start()
    try:
        start = time.perf_counter()
        scope = scope_of("10.20.0.0/16")
        count = 0
        last = None
        for target in scope.targets():
            count += 1
            last = target
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == scope.size == 65_536
    assert last == Target("10.20.255.255")
    assert peak < 1_000_000, f"peak {peak:,} bytes: the scope is not lazy"
    assert elapsed < 5.0


def test_fragmented_slash_16_pattern_stays_small() -> None:
    tracemalloc.start()
    try:
        scope = scope_of("10.0-255.0-255.7")  # 65,536 separate addresses
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scope.size == 65_536
    assert scope.allows("10.200.3.7") and not scope.allows("10.200.3.8")
    assert peak < 20_000_000


# ---------------------------------------------------------------------------------------------
# The guard in the connector


def test_connector_with_scope_blocks_out_of_scope_addresses() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            listener.bind(("127.0.0.2", 0))
        except OSError as exc:  # pragma: no cover - every Linux loopback has 127/8
            pytest.fail(f"cannot bind 127.0.0.2: {exc}")
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        connector = Connector(build_scope(["127.0.0.1"]), rate=0, connect_timeout=2.0)

        async def attempt(address: str) -> None:
            async with connector.open(address, port):
                pass  # pragma: no cover - must not be reached

        for address in ("127.0.0.2", "::ffff:127.0.0.2", "localhost", "127.2", "127.0.0.2 "):
            with pytest.raises(OutOfScopeError) as info:
                asyncio.run(attempt(address))
            assert info.value.address == address and info.value.port == port
        assert connector.attempts == 0
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked

        # Control: with 127.0.0.2 in scope the same connector path does reach the listener.
        allowed = Connector(build_scope(["127.0.0.2"]), rate=0, connect_timeout=2.0)

        async def connect() -> None:
            async with allowed.open("127.0.0.2", port):
                pass

        asyncio.run(connect())
        assert allowed.attempts == 1
        deadline = time.monotonic() + 2.0
        while True:
            try:
                conn, _ = listener.accept()
                conn.close()
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the allowed connection never arrived"
                time.sleep(0.01)
    finally:
        listener.close()
