"""Targets and scope: what the user named, expanded lazily, and the guard that enforces it.

The scope is the set of addresses dicomguard may send a packet to. It is built once from the
user's target specifications, files and scan imports, minus the exclusions; every connection goes
through `net.connector.Connector`, which asks `Scope.allows(address)` first.

Public API
----------
build_scope(specs, *, exclude=(), target_files=(), exclude_files=(), nmap_xml=(), masscan=(),
            allow_large=False, resolver=system_resolver) -> Scope
    Parse, resolve, union, subtract and size-check everything; raise ScopeError with the spec
    (and file:line) at fault and the reason.
Scope.targets() / iter(scope) -> Iterator[Target]
    Lazily yields one Target per address, deduplicated, IPv4 first then IPv6, ascending.
Scope.size / len(scope)
    Number of addresses after exclusions, known without expanding anything.
Scope.allows(address) / address in scope
    Bisect lookup; True only for a literal IP address inside a target and outside every exclusion.
Scope.describe() -> str
    One line for the console ("1,024 addresses (1,024 IPv4) from 2 specs, 1 exclusion").
parse_target_spec(text) -> list[TargetSpec]
    Parse whitespace-separated specifications without resolving or expanding them.
read_target_file(path) -> list[tuple[str, str]]
    The specs of an -iL style file with their "path:line" origin; `#` starts a comment.
load_scan_output(path) -> list[ImportedHost]
    Hosts (address, open TCP ports, name) from nmap -oX/-oG or masscan -oL/-oJ/-oD/-oX/-oG output;
    the format is sniffed from the content.
system_resolver(name) -> list[str]
    Default resolver (socket.getaddrinfo); tests inject their own callable instead.

Target syntax (nmap's where the two overlap)
-------------------------------------------
- IPv4 / IPv6 addresses: ``10.0.0.1``, ``2001:db8::1``; IPv4-mapped IPv6 (``::ffff:10.0.0.1``)
  is treated as the IPv4 address it maps to, everywhere.
- CIDR, non-strict like nmap: ``10.0.0.0/24``, ``10.0.0.7/24`` (the whole /24), ``2001:db8::/120``,
  ``host.example/28`` (the block around each resolved address).
- nmap octet ranges (IPv4 only): ``10.0.0.1-50``, ``10.0.1-3.1-254``, ``10.0.0.1,3,5``,
  ``10.0.0.*``, open ends ``10.0.0.-5`` / ``10.0.0.250-`` / ``10.0.0.-``. Octets are decimal
  0-255 without leading zeros; a reversed range (``50-1``) is an error, as in nmap.
- Full address ranges (masscan style, v4 and v6): ``10.0.0.1-10.0.0.50``.
- Host names: resolved through the injectable resolver to all A/AAAA addresses; ``Target.host``
  carries the name. Dotted all-numeric text (``10.0.0.256``, ``127.1``) is never sent to DNS.
- Ports: ``host:104``, ``10.0.0.1:104,11112``, ``[2001:db8::1]:104``, port ranges ``104-105``.
  A bare IPv6 address never takes a port: write ``[v6]:port``.
- Zone IDs (``fe80::1%eth0``) are refused in specifications.

Exclusions use the same syntax without ports. An -iL file holds one or more specs per line,
whitespace separated; ``#`` starts a comment; blank lines are ignored.

Ports, names and duplicates
---------------------------
Each address appears once. Its ``Target.ports`` is the union of the explicit ports of every
spec/import naming it, but if any spec names it *without* ports it gets ``()`` ("the scan's port
list"): the wider request wins. ``Target.host`` is the first name given for it (a name spec, or the
user/PTR name of an import), else None. Imports contribute hosts that are up; their open TCP ports
become explicit ports (an up host with no open TCP port, e.g. from ``nmap -sn``, gets ``()``).

Size limits
-----------
- The scope after exclusions may hold at most 65,536 addresses (`DEFAULT_LIMIT`), or 16,777,216
  (`LARGE_LIMIT`, a /8) with ``allow_large=True``.
- No single target spec may exceed `LARGE_LIMIT`, whatever the flag: ``0.0.0.0/0`` or an IPv6 /64
  is refused at once, before anything is expanded. Exclusions may be as large as you like, but an
  octet-range exclusion may not split into more than `LARGE_LIMIT` pieces.

Memory: the scope is stored as sorted disjoint intervals (compact arrays for IPv4), so a /16 costs
a few hundred bytes and iterating it allocates one Target at a time.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
import json
import re
import socket
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any
from xml.parsers import expat

from dicomguard.errors import ScopeError
from dicomguard.models import Target

__all__ = [
    "DEFAULT_LIMIT",
    "LARGE_LIMIT",
    "AddressBlock",
    "ImportedHost",
    "NameRef",
    "OctetPattern",
    "Resolver",
    "Scope",
    "TargetSpec",
    "build_scope",
    "load_scan_output",
    "parse_target_spec",
    "read_target_file",
    "system_resolver",
]

DEFAULT_LIMIT = 65_536
# A canonical dotted quad (no leading zeros, no short forms): safe for inet_aton.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z")
LARGE_LIMIT = 2**24

Resolver = Callable[[str], Iterable[str]]

_V4_MAX = 2**32 - 1
_V6_MAX = 2**128 - 1
_MAPPED_LO = 0xFFFF_0000_0000  # ::ffff:0.0.0.0
_MAPPED_HI = 0xFFFF_FFFF_FFFF  # ::ffff:255.255.255.255

_OCTET_CHARS = frozenset("0123456789.,-*")
_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_DIGITS_RE = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------------------------
# Parsed specifications


@dataclass(frozen=True, slots=True)
class AddressBlock:
    """A contiguous block of addresses [start, end] of one IP version (4 or 6)."""

    version: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class OctetPattern:
    """An nmap octet-range IPv4 pattern: sorted, distinct values for each of the four octets."""

    octets: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]

    @property
    def size(self) -> int:
        a, b, c, d = self.octets
        return len(a) * len(b) * len(c) * len(d)

    def _split(self) -> tuple[int, list[tuple[int, int]]]:
        """(k, runs): octets after k are all full; runs are the consecutive runs of octet k."""
        k = 3
        while k >= 0 and len(self.octets[k]) == 256:
            k -= 1
        if k < 0:
            return -1, [(0, 255)]
        runs: list[tuple[int, int]] = []
        for value in self.octets[k]:
            if runs and runs[-1][1] == value - 1:
                runs[-1] = (runs[-1][0], value)
            else:
                runs.append((value, value))
        return k, runs

    @property
    def pieces(self) -> int:
        """How many contiguous intervals `intervals()` yields at most, computed, not expanded."""
        k, runs = self._split()
        count = len(runs)
        for i in range(max(k, 0)):
            count *= len(self.octets[i])
        return count

    def intervals(self) -> Iterator[tuple[int, int]]:
        """The addresses as ascending, disjoint (start, end) integer intervals, lazily."""
        k, runs = self._split()
        if k < 0:
            yield 0, _V4_MAX
            return
        shift = 8 * (3 - k)
        fill = (1 << shift) - 1
        for prefix_octets in product(*self.octets[:k]):
            base = 0
            for octet in prefix_octets:
                base = (base << 8) | octet
            base <<= 8 * (4 - k)
            for lo, hi in runs:
                yield base | (lo << shift), base | (hi << shift) | fill


@dataclass(frozen=True, slots=True)
class NameRef:
    """A host name to resolve; with `prefix`, the CIDR block of that length around each address."""

    name: str
    prefix: int | None = None


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One parsed target specification.

    `text` is the spec as written; `ports` are explicit ports (None: the scan's port list).
    """

    text: str
    what: AddressBlock | OctetPattern | NameRef
    ports: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class ImportedHost:
    """A host from a scanner's output: an address, its open TCP ports, and a name if known."""

    address: str
    ports: tuple[int, ...] = ()
    host: str | None = None


def _bad(text: str, reason: str, origin: str | None = None) -> ScopeError:
    where = f" ({origin})" if origin else ""
    return ScopeError(f"invalid target {text!r}{where}: {reason}")


def _parse_ports(text: str, spec: str) -> tuple[int, ...]:
    if not text:
        raise _bad(spec, "empty port list after ':'")
    ports: set[int] = set()
    for item in text.split(","):
        lo_text, dash, hi_text = item.partition("-")
        if not _DIGITS_RE.fullmatch(lo_text) or (dash and not _DIGITS_RE.fullmatch(hi_text)):
            raise _bad(spec, f"bad port {item!r} (ports are numbers 1-65535, or ranges a-b)")
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
        if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
            raise _bad(spec, f"port {item!r} is out of range 1-65535")
        if hi < lo:
            raise _bad(spec, f"reversed port range {item!r}")
        ports.update(range(lo, hi + 1))
    return tuple(sorted(ports))


def _parse_octet(field_text: str, spec: str) -> list[int]:
    """One octet field: comma-separated values, ranges a-b, open ranges -b / a- / -, or '*'."""
    values: set[int] = set()
    for item in field_text.split(","):
        if item == "*":
            lo, hi = 0, 255
        elif "-" in item:
            lo_text, _, hi_text = item.partition("-")
            lo = _octet_value(lo_text, 0, spec, item)
            hi = _octet_value(hi_text, 255, spec, item)
            if hi < lo:
                raise _bad(spec, f"reversed octet range {item!r}")
        elif item:
            lo = hi = _octet_value(item, 0, spec, item)
        else:
            raise _bad(spec, f"empty octet in {field_text!r}" if field_text else "empty octet")
        values.update(range(lo, hi + 1))
    return sorted(values)


def _octet_value(text: str, default: int, spec: str, item: str) -> int:
    if not text:
        return default
    if not _DIGITS_RE.fullmatch(text) or len(text) > 3:
        raise _bad(spec, f"bad octet {item!r}")
    if len(text) > 1 and text[0] == "0":
        raise _bad(spec, f"octet {text!r} has a leading zero (ambiguous: octal or decimal?)")
    value = int(text)
    if value > 255:
        raise _bad(spec, f"octet {text} is out of range 0-255")
    return value


def _block(addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
           last: int | None = None) -> AddressBlock:
    start = int(addr)
    return AddressBlock(addr.version, start, start if last is None else last)


def _is_host_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if not all(_LABEL_RE.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()  # an all-numeric last label is a mistyped address


def _parse_host_part(host: str, spec: str) -> AddressBlock | OctetPattern | NameRef:
    if not host:
        raise _bad(spec, "no address or host name")
    if "%" in host:
        raise _bad(spec, "IPv6 zone IDs (%) are not supported; use the address without it")
    if "/" in host:
        base, _, bits = host.partition("/")
        if not _DIGITS_RE.fullmatch(bits) or len(bits) > 3:
            raise _bad(spec, f"bad prefix length {bits!r}")
        try:
            addr = ipaddress.ip_address(base)
        except ValueError:
            addr = None
        if addr is not None:
            if int(bits) > addr.max_prefixlen:
                raise _bad(spec, f"prefix length /{bits} is longer than /{addr.max_prefixlen}")
            net = ipaddress.ip_network(f"{base}/{int(bits)}", strict=False)
            return _block(net.network_address, int(net.broadcast_address))
        if _is_host_name(base):
            if int(bits) > 128:
                raise _bad(spec, f"prefix length /{bits} is too long")
            return NameRef(base.rstrip("."), int(bits))
        raise _bad(spec, f"{base!r} before '/' is neither an IP address nor a host name")
    try:
        return _block(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host.count("-") == 1:
        left, _, right = host.partition("-")
        try:
            first = ipaddress.ip_address(left)
        except ValueError:
            first = None
        if first is not None and ("." in right or ":" in right):
            try:
                last = ipaddress.ip_address(right)
            except ValueError:
                raise _bad(spec, f"range end {right!r} is not an IP address") from None
            if last.version != first.version:
                raise _bad(spec, "range mixes IPv4 and IPv6")
            if int(last) < int(first):
                raise _bad(spec, "reversed range (the end is before the start)")
            return _block(first, int(last))
    if ":" in host:
        raise _bad(spec, "not a valid IPv6 address (IPv6 takes CIDR or full start-end ranges, "
                         "and ports only as [address]:port)")
    if "." in host and set(host) <= _OCTET_CHARS:
        fields = host.split(".")
        if len(fields) != 4:
            raise _bad(spec, f"an IPv4 address has 4 octets, not {len(fields)}")
        a, b, c, d = (tuple(_parse_octet(f, spec)) for f in fields)
        return OctetPattern((a, b, c, d))
    if _is_host_name(host):
        return NameRef(host.rstrip("."))
    raise _bad(spec, "not an IP address, CIDR block, range or host name")


def _parse_one(token: str) -> TargetSpec:
    ports: tuple[int, ...] | None = None
    host = token
    if token.startswith("["):
        close = token.find("]")
        if close < 0:
            raise _bad(token, "missing ']'")
        host, rest = token[1:close], token[close + 1:]
        if ":" not in host:
            raise _bad(token, "brackets are only for IPv6 addresses")
        if rest:
            if not rest.startswith(":"):
                raise _bad(token, f"unexpected {rest!r} after ']'")
            ports = _parse_ports(rest[1:], token)
    elif token.count(":") == 1:
        host, _, port_text = token.partition(":")
        ports = _parse_ports(port_text, token)
    return TargetSpec(token, _parse_host_part(host, token), ports)


def parse_target_spec(text: str) -> list[TargetSpec]:
    """Parse one or more whitespace-separated target specifications (nothing is resolved)."""
    specs = [_parse_one(token) for token in text.split()]
    if not specs:
        raise _bad(text, "empty target specification")
    return specs


def _spec_origin(err: ScopeError, origin: str | None) -> ScopeError:
    if origin is None:
        return err
    msg = str(err)
    if msg.startswith("invalid target ") and ": " in msg:
        head, _, reason = msg.partition(": ")
        return ScopeError(f"{head} ({origin}): {reason}")
    return ScopeError(f"{origin}: {msg}")


# --------------------------------------------------------------------------------------------
# Files and scanner output


def _read_text(path: Path, what: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ScopeError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScopeError(f"{what} {str(path)!r} is not UTF-8 text: {exc.reason} at byte "
                         f"{exc.start}") from exc


def read_target_file(path: Path) -> list[tuple[str, str]]:
    """The specs of an -iL style file as (spec, "path:line"); '#' starts a comment."""
    text = _read_text(path, "target file")
    out: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        for token in line.split("#", 1)[0].split():
            out.append((token, f"{path}:{number}"))
    return out


class _ForbiddenXml(Exception):
    pass


def _forbid(*_args: Any) -> None:
    raise _ForbiddenXml("XML entity or DTD declarations are not allowed")


def _doctype(_name: str, system_id: str | None, public_id: str | None,
             has_internal_subset: int) -> None:
    # nmap writes a bare <!DOCTYPE nmaprun>; anything with a subset or external id is refused.
    if has_internal_subset or system_id or public_id:
        raise _ForbiddenXml("a DOCTYPE with an internal subset or external identifier")


class _XmlHosts:
    """Streaming handler for nmap/masscan -oX: hosts that are up (or, for masscan, which has no
    <status>, that have an open port), with their open TCP ports and a name."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.root: str | None = None
        self.hosts: list[ImportedHost] = []
        self._reset()

    def _reset(self) -> None:
        self.status: str | None = None
        self.addresses: list[str] = []
        self.names: list[tuple[str, str]] = []
        self.ports: set[int] = set()
        self.port: tuple[str, str] | None = None
        self.port_state: str | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        parent = self.stack[-1] if self.stack else ""
        if self.root is None:
            self.root = name
        self.stack.append(name)
        if name == "host" and parent == "nmaprun":
            self._reset()
        elif parent == "host" and name == "status":
            self.status = attrs.get("state")
        elif parent == "host" and name == "address":
            if attrs.get("addrtype", "ipv4") in ("ipv4", "ipv6") and "addr" in attrs:
                self.addresses.append(attrs["addr"])
        elif parent == "hostnames" and name == "hostname":
            if attrs.get("name"):
                self.names.append((attrs.get("type", ""), attrs["name"]))
        elif parent == "ports" and name == "port":
            self.port = (attrs.get("protocol", ""), attrs.get("portid", ""))
            self.port_state = None
        elif parent == "port" and name == "state":
            self.port_state = attrs.get("state")

    def end(self, name: str) -> None:
        self.stack.pop()
        parent = self.stack[-1] if self.stack else ""
        if name == "port" and parent == "ports" and self.port is not None:
            proto, portid = self.port
            if proto == "tcp" and self.port_state == "open":
                self.ports.add(_port_number(portid))
            self.port = None
        elif name == "host" and parent == "nmaprun":
            up = self.status == "up" if self.status is not None else bool(self.ports)
            if up:
                names = sorted(self.names, key=lambda n: n[0] != "user")
                host = names[0][1] if names else None
                for address in self.addresses:
                    self.hosts.append(ImportedHost(address, tuple(sorted(self.ports)), host))


def _port_number(text: object) -> int:
    try:
        port = int(text)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"bad port number {text!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return port


def _load_xml(path: Path) -> list[ImportedHost]:
    handler = _XmlHosts()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid  # type: ignore[assignment]
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except _ForbiddenXml as exc:
        raise ScopeError(f"refusing XML file {str(path)!r}: {exc}") from None
    except expat.ExpatError as exc:
        raise ScopeError(f"{str(path)!r} is not well-formed XML: "
                         f"{expat.ErrorString(exc.code)} at line {exc.lineno}") from None
    except ValueError as exc:
        raise ScopeError(f"{str(path)!r}: {exc}") from None
    except OSError as exc:
        raise ScopeError(f"cannot read scan output {str(path)!r}: {exc.strerror or exc}") from exc
    if handler.root != "nmaprun":
        raise ScopeError(f"{str(path)!r} is XML but not nmap or masscan -oX output")
    return _merge_hosts(handler.hosts)


def _merge_hosts(hosts: Iterable[ImportedHost]) -> list[ImportedHost]:
    """One entry per address (masscan writes a <host> per open port), in first-seen order."""
    merged: dict[str, ImportedHost] = {}
    for h in hosts:
        old = merged.get(h.address)
        if old is not None:
            h = ImportedHost(h.address, tuple(sorted({*old.ports, *h.ports})), old.host or h.host)
        merged[h.address] = h
    return list(merged.values())


def _json_records(text: str) -> Iterator[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, list):
        yield from data
        return
    if isinstance(data, dict):
        yield data
        return
    # masscan's -oJ of older versions has trailing commas; -oD is one object a line.
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip().strip(",").strip()
        if not line or line in ("[", "]"):
            continue
        try:
            yield json.loads(line)
        except ValueError:
            if '"ip"' in line:
                raise ValueError(f"line {number} is not a JSON record") from None
            # e.g. the unquoted {finished: 1} trailer of old masscan versions


def _load_json(text: str) -> list[ImportedHost]:
    ports: dict[str, set[int]] = {}
    for record in _json_records(text):
        if not isinstance(record, dict) or "ip" not in record:
            continue  # {"finished": 1} and the like
        entries = record.get("ports") or []
        if not isinstance(entries, list):
            raise ValueError(f"record for {record['ip']!r} has a bad 'ports' value")
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("proto") == "tcp" and entry.get("status") == "open":
                ports.setdefault(str(record["ip"]), set()).add(_port_number(entry.get("port")))
    return [ImportedHost(addr, tuple(sorted(p))) for addr, p in ports.items()]


def _load_list(text: str) -> list[ImportedHost]:
    ports: dict[str, set[int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] not in ("open", "closed", "banner") or len(fields) < 4:
            raise ValueError(f"line {number} is not a masscan -oL record")
        if fields[0] == "open" and fields[1] == "tcp":
            try:
                ports.setdefault(fields[3], set()).add(_port_number(fields[2]))
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
    return [ImportedHost(addr, tuple(sorted(p))) for addr, p in ports.items()]


def _load_grepable(text: str) -> list[ImportedHost]:
    hosts: dict[str, tuple[set[int], list[str]]] = {}
    up: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        fields = line.split("\t")  # nmap: Host: ...; masscan: Timestamp: ...<TAB>Host: ...
        head_index = next((i for i, f in enumerate(fields) if f.startswith("Host:")), None)
        if head_index is None:
            continue
        head = fields[head_index][len("Host:"):].split()
        fields = fields[head_index:]
        if not head:
            raise ValueError(f"line {number}: no address after 'Host:'")
        address = head[0]
        name = " ".join(head[1:]).strip("()")
        entry = hosts.setdefault(address, (set(), []))
        if name and name not in entry[1]:
            entry[1].append(name)
        for fld in fields[1:]:
            key, _, value = fld.partition(":")
            if key == "Status" and value.strip().lower() == "up":
                up.add(address)
            elif key == "Ports":
                for item in value.split(","):
                    parts = item.strip().split("/")
                    if len(parts) >= 3 and parts[1] == "open" and parts[2] == "tcp":
                        try:
                            entry[0].add(_port_number(parts[0]))
                        except ValueError as exc:
                            raise ValueError(f"line {number}: {exc}") from None
    return [ImportedHost(addr, tuple(sorted(p)), names[0] if names else None)
            for addr, (p, names) in hosts.items() if p or addr in up]


def load_scan_output(path: Path) -> list[ImportedHost]:
    """Hosts from nmap (-oX, -oG) or masscan (-oX, -oL, -oJ, -oD, -oG) output, sniffed by content.

    Only hosts that are up, and only TCP ports in state "open", are kept. Addresses are returned
    as written; `build_scope` validates them.
    """
    path = Path(path)
    text = _read_text(path, "scan output")
    head = text.lstrip()
    try:
        if head.startswith("<"):
            return _load_xml(path)
        if head.startswith(("[", "{")):
            return _load_json(text)
        if re.search(r"^(?:[^#].*\t)?Host: ", text, re.MULTILINE):
            return _load_grepable(text)
        return _load_list(text)
    except ValueError as exc:
        raise ScopeError(f"scan output {str(path)!r}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Resolution


def system_resolver(name: str) -> list[str]:
    """All IPv4/IPv6 addresses of `name` via socket.getaddrinfo, in its order, deduplicated."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ScopeError(f"cannot resolve host name {name!r}: {exc}") from None
    out: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addr = str(sockaddr[0]).split("%", 1)[0]
            if addr not in out:
                out.append(addr)
    return out


def _resolve(name: str, resolver: Resolver, origin: str) -> list[ipaddress.IPv4Address
                                                                  | ipaddress.IPv6Address]:
    try:
        answers = list(resolver(name))
    except ScopeError as exc:
        raise ScopeError(f"{exc} ({origin})") from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise ScopeError(f"cannot resolve host name {name!r} ({origin}): {exc}") from None
    if not answers:
        raise ScopeError(f"host name {name!r} ({origin}) resolved to no address")
    out = []
    for answer in answers:
        try:
            out.append(ipaddress.ip_address(str(answer).split("%", 1)[0]))
        except ValueError:
            raise ScopeError(f"resolver returned {answer!r} for {name!r} ({origin}), "
                             "which is not an IP address") from None
    return out


# --------------------------------------------------------------------------------------------
# Interval machinery

# A label is (host name, explicit ports or None for "the scan's port list").
_Label = tuple[str | None, tuple[int, ...] | None]
_Item = tuple[int, int, int]  # (start, end, label id)


def _normalise(version: int, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (version, start, end), moving the IPv4-mapped part of an IPv6 block to IPv4."""
    if version == 4 or end < _MAPPED_LO or start > _MAPPED_HI:
        yield version, start, end
        return
    if start < _MAPPED_LO:
        yield 6, start, _MAPPED_LO - 1
    yield 4, max(start, _MAPPED_LO) - _MAPPED_LO, min(end, _MAPPED_HI) - _MAPPED_LO
    if end > _MAPPED_HI:
        yield 6, _MAPPED_HI + 1, end


def _union(items: Iterable[_Item]) -> Iterator[tuple[int, int, frozenset[int]]]:
    """Sweep sorted, possibly overlapping labelled intervals into disjoint segments, each with
    the set of labels covering it."""
    active: list[tuple[int, int]] = []  # heap of (end, label)
    counts: dict[int, int] = {}
    it = iter(items)
    nxt = next(it, None)
    pos = 0
    while nxt is not None or active:
        if not active:
            assert nxt is not None
            pos = nxt[0]
        while nxt is not None and nxt[0] <= pos:
            heapq.heappush(active, (nxt[1], nxt[2]))
            counts[nxt[2]] = counts.get(nxt[2], 0) + 1
            nxt = next(it, None)
        seg_end = active[0][0]
        if nxt is not None and nxt[0] - 1 < seg_end:
            seg_end = nxt[0] - 1
        yield pos, seg_end, frozenset(counts)
        pos = seg_end + 1
        while active and active[0][0] < pos:
            _, label = heapq.heappop(active)
            counts[label] -= 1
            if not counts[label]:
                del counts[label]


def _merge_plain(items: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Coalesce sorted intervals into disjoint, non-adjacent ones."""
    cur: tuple[int, int] | None = None
    for s, e in items:
        if cur is not None and s <= cur[1] + 1:
            if e > cur[1]:
                cur = (cur[0], e)
        else:
            if cur is not None:
                yield cur
            cur = (s, e)
    if cur is not None:
        yield cur


def _subtract(segments: Iterable[_Item], holes: Iterable[tuple[int, int]]) -> Iterator[_Item]:
    """Remove disjoint sorted `holes` from disjoint sorted labelled `segments`."""
    hole_it = iter(holes)
    hole = next(hole_it, None)
    for s, e, label in segments:
        while s <= e:
            while hole is not None and hole[1] < s:
                hole = next(hole_it, None)
            if hole is None or hole[0] > e:
                yield s, e, label
                break
            if hole[0] > s:
                yield s, hole[0] - 1, label
            s = hole[1] + 1


class _Table:
    """Disjoint sorted intervals of one IP version with a label per interval."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.starts: array[int] | list[int] = array("Q") if version == 4 else []
        self.ends: array[int] | list[int] = array("Q") if version == 4 else []
        self.labels: array[int] = array("I")
        self.size = 0

    def append(self, start: int, end: int, label: int) -> None:
        if self.ends and self.ends[-1] == start - 1 and self.labels[-1] == label:
            self.ends[-1] = end
        else:
            self.starts.append(start)
            self.ends.append(end)
            self.labels.append(label)
        self.size += end - start + 1

    def find(self, value: int) -> int:
        i = bisect.bisect_right(self.starts, value) - 1
        return i if i >= 0 and self.ends[i] >= value else -1


def _v4_text(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def _v6_text(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


# --------------------------------------------------------------------------------------------
# The scope


class Scope:
    """The addresses a scan may contact: lazily iterable, sized, and the connector's guard."""

    def __init__(self, tables: tuple[_Table, _Table], labels: Sequence[_Label],
                 specs: Sequence[str], excludes: Sequence[str], imports: int) -> None:
        self._v4, self._v6 = tables
        self._labels = tuple(labels)
        self.specs = tuple(specs)          # the specs as the user wrote them
        self.excludes = tuple(excludes)    # the exclusion specs as written
        self.imported = imports            # hosts taken from nmap/masscan output

    @property
    def size(self) -> int:
        """The number of addresses in the scope (after exclusions)."""
        return self._v4.size + self._v6.size

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def allows(self, address: str) -> bool:
        """True only for an IP address literal inside the scope; names and junk are refused."""
        if not isinstance(address, str):
            return False
        if _CANONICAL_V4.match(address):  # the hot path: one regex instead of ipaddress
            return self._v4.find(int.from_bytes(socket.inet_aton(address), "big")) >= 0
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6:
            assert isinstance(ip, ipaddress.IPv6Address)
            mapped = ip.ipv4_mapped
            if mapped is not None:
                return self._v4.find(int(mapped)) >= 0
            return self._v6.find(int(ip)) >= 0
        return self._v4.find(int(ip)) >= 0

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.allows(address)

    def targets(self) -> Iterator[Target]:
        """One Target per address, IPv4 then IPv6, ascending; lazily, one at a time."""
        for table, text in ((self._v4, _v4_text), (self._v6, _v6_text)):
            for i in range(len(table.starts)):
                host, ports = self._labels[table.labels[i]]
                explicit = ports or ()
                for value in range(table.starts[i], table.ends[i] + 1):
                    yield Target(text(value), host, explicit)

    def __iter__(self) -> Iterator[Target]:
        return self.targets()

    def describe(self) -> str:
        """A short summary for the console."""
        if not self.size:
            text = "empty scope: no address to scan"
        else:
            noun = "address" if self.size == 1 else "addresses"
            families = [f"{t.size:,} IPv{t.version}" for t in (self._v4, self._v6) if t.size]
            text = f"{self.size:,} {noun} ({', '.join(families)})"
        sources = []
        if self.specs:
            sources.append(f"{len(self.specs):,} spec{'s' if len(self.specs) != 1 else ''}")
        if self.imported:
            sources.append(f"{self.imported:,} imported host{'s' if self.imported != 1 else ''}")
        if sources:
            text += " from " + " and ".join(sources)
        if self.excludes:
            n = len(self.excludes)
            text += f", {n:,} exclusion{'s' if n != 1 else ''}"
        return text

    def __repr__(self) -> str:
        return f"<Scope {self.describe()}>"


@dataclass
class _Builder:
    resolver: Resolver
    limit: int
    labels: list[_Label] = field(default_factory=lambda: [(None, None)])
    label_ids: dict[_Label, int] = field(default_factory=lambda: {(None, None): 0})
    blocks: dict[int, list[_Item]] = field(default_factory=lambda: {4: [], 6: []})
    patterns: list[tuple[OctetPattern, int]] = field(default_factory=list)
    holes: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: {4: [], 6: []})
    hole_patterns: list[OctetPattern] = field(default_factory=list)

    def label(self, host: str | None, ports: tuple[int, ...] | None) -> int:
        key = (host, ports)
        found = self.label_ids.get(key)
        if found is None:
            found = self.label_ids[key] = len(self.labels)
            self.labels.append(key)
        return found

    def _check_spec_size(self, size: int, spec: TargetSpec, origin: str | None) -> None:
        if size > LARGE_LIMIT:
            raise _spec_origin(_bad(spec.text, (
                f"covers {size:,} addresses; no scan may exceed {LARGE_LIMIT:,} addresses, "
                "even with --allow-large")), origin)

    def add_block(self, version: int, start: int, end: int, label: int) -> None:
        for v, s, e in _normalise(version, start, end):
            self.blocks[v].append((s, e, label))

    def add_target(self, spec: TargetSpec, origin: str | None) -> None:
        what = spec.what
        if isinstance(what, NameRef):
            for addr in _resolve(what.name, self.resolver, origin or repr(spec.text)):
                if what.prefix is None:
                    label = self.label(what.name, spec.ports)
                    self.add_block(addr.version, int(addr), int(addr), label)
                    continue
                if what.prefix > addr.max_prefixlen:
                    raise _spec_origin(_bad(spec.text, f"prefix /{what.prefix} is too long for "
                                                       f"IPv{addr.version} address {addr}"),
                                       origin)
                net = ipaddress.ip_network(f"{addr}/{what.prefix}", strict=False)
                self._check_spec_size(net.num_addresses, spec, origin)
                self.add_block(addr.version, int(net.network_address),
                               int(net.broadcast_address), self.label(None, spec.ports))
            return
        self._check_spec_size(what.size, spec, origin)
        label = self.label(None, spec.ports)
        if isinstance(what, OctetPattern):
            self.patterns.append((what, label))
        else:
            self.add_block(what.version, what.start, what.end, label)

    def add_exclusion(self, spec: TargetSpec, origin: str | None) -> None:
        if spec.ports is not None:
            raise _spec_origin(_bad(spec.text, "exclusions cannot carry ports"), origin)
        what = spec.what
        if isinstance(what, OctetPattern):
            if what.pieces > LARGE_LIMIT:
                raise _spec_origin(_bad(spec.text, (
                    f"this exclusion pattern splits into {what.pieces:,} pieces (limit "
                    f"{LARGE_LIMIT:,}); use CIDR blocks")), origin)
            self.hole_patterns.append(what)
            return
        if isinstance(what, NameRef):
            for addr in _resolve(what.name, self.resolver, origin or repr(spec.text)):
                prefix = addr.max_prefixlen if what.prefix is None else what.prefix
                if prefix > addr.max_prefixlen:
                    raise _spec_origin(_bad(spec.text, f"prefix /{prefix} is too long for "
                                                       f"IPv{addr.version} address {addr}"),
                                       origin)
                net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
                self.add_hole(addr.version, int(net.network_address), int(net.broadcast_address))
            return
        self.add_hole(what.version, what.start, what.end)

    def add_hole(self, version: int, start: int, end: int) -> None:
        for v, s, e in _normalise(version, start, end):
            self.holes[v].append((s, e))

    def add_import(self, host: ImportedHost, path: Path) -> None:
        try:
            addr = ipaddress.ip_address(host.address.split("%", 1)[0])
        except ValueError:
            raise ScopeError(f"scan output {str(path)!r}: {host.address!r} is not an IP "
                             "address") from None
        label = self.label(host.host, host.ports or None)  # up, no open port: the scan's ports
        self.add_block(addr.version, int(addr), int(addr), label)

    def _merged_label(self, ids: frozenset[int], cache: dict[frozenset[int], int]) -> int:
        found = cache.get(ids)
        if found is not None:
            return found
        if len(ids) == 1:
            (found,) = ids
        else:
            ordered = sorted(ids)
            host = next((self.labels[i][0] for i in ordered if self.labels[i][0]), None)
            port_sets = [self.labels[i][1] for i in ordered]
            ports: tuple[int, ...] | None = None
            if all(p is not None for p in port_sets):
                ports = tuple(sorted({p for ps in port_sets if ps for p in ps}))
            found = self.label(host, ports)
        cache[ids] = found
        return found

    def build(self, specs: Sequence[str], excludes: Sequence[str], imports: int) -> Scope:
        tables = (_Table(4), _Table(6))
        cache: dict[frozenset[int], int] = {}
        for table in tables:
            v = table.version
            streams: list[Iterator[_Item]] = [iter(sorted(self.blocks[v]))]
            hole_streams: list[Iterator[tuple[int, int]]] = [iter(sorted(self.holes[v]))]
            if v == 4:
                streams += [((s, e, label) for s, e in p.intervals()) for p, label in self.patterns]
                hole_streams += [p.intervals() for p in self.hole_patterns]
            segments = (
                (s, e, self._merged_label(ids, cache))
                for s, e, ids in _union(heapq.merge(*streams))
            )
            holes = _merge_plain(heapq.merge(*hole_streams))
            for s, e, label in _subtract(segments, holes):
                table.append(s, e, label)
                if tables[0].size + tables[1].size > self.limit:
                    raise self._too_large()
        return Scope(tables, self.labels, specs, excludes, imports)

    def _too_large(self) -> ScopeError:
        if self.limit >= LARGE_LIMIT:
            return ScopeError(f"the targets cover more than {self.limit:,} addresses after "
                              "exclusions, the most any scan may cover; split the scan")
        return ScopeError(
            f"the targets cover more than {self.limit:,} addresses after exclusions; narrow "
            f"them, add exclusions, or pass --allow-large (up to {LARGE_LIMIT:,} addresses)")


def build_scope(
    specs: Iterable[str] = (),
    *,
    exclude: Iterable[str] = (),
    target_files: Iterable[Path] = (),
    exclude_files: Iterable[Path] = (),
    nmap_xml: Iterable[Path] = (),
    masscan: Iterable[Path] = (),
    allow_large: bool = False,
    resolver: Resolver = system_resolver,
) -> Scope:
    """Build the scope from specs, -iL files and nmap/masscan imports, minus the exclusions.

    Each item of `specs`/`exclude` may hold several whitespace-separated specs. `nmap_xml` and
    `masscan` files are both sniffed (any format `load_scan_output` reads). Raises ScopeError for
    an invalid spec, an unresolvable name, an unreadable or malformed file, or a scope larger than
    DEFAULT_LIMIT (LARGE_LIMIT with `allow_large`).
    """
    builder = _Builder(resolver, LARGE_LIMIT if allow_large else DEFAULT_LIMIT)
    written: list[str] = []
    for spec, origin in _each_spec(specs, target_files, "target"):
        builder.add_target(spec, origin)
        written.append(spec.text)
    excluded: list[str] = []
    for spec, origin in _each_spec(exclude, exclude_files, "exclusion"):
        try:
            builder.add_exclusion(spec, origin)
        except ScopeError as exc:
            raise _exclusion_error(exc) from None
        excluded.append(spec.text)
    imported = 0
    for path in [*nmap_xml, *masscan]:
        for host in load_scan_output(Path(path)):
            builder.add_import(host, Path(path))
            imported += 1
    return builder.build(written, excluded, imported)


def _exclusion_error(exc: ScopeError) -> ScopeError:
    msg = str(exc)
    if msg.startswith("invalid target "):
        return ScopeError("invalid exclusion " + msg[len("invalid target "):])
    return exc


def _each_spec(specs: Iterable[str], files: Iterable[Path],
               role: str) -> Iterator[tuple[TargetSpec, str | None]]:
    """Parse the specs given directly, then those of the files, with their origin."""
    if isinstance(specs, str):  # a lone string is one spec line, not an iterable of characters
        specs = [specs]
    texts: list[tuple[str, str | None]] = [(text, None) for text in specs]
    for path in files:
        texts += read_target_file(Path(path))
    for text, origin in texts:
        for token in text.split():
            try:
                spec = _parse_one(token)
            except ScopeError as exc:
                err = _spec_origin(exc, origin)
                raise (_exclusion_error(err) if role == "exclusion" else err) from None
            yield spec, origin
