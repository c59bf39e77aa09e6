"""The probe against hostile and odd RPC peers: garbage, tarpits, oversized and endless
records, huge or badly encoded export lists, AUTH_SYS-only mountd. Each ends cleanly, in the
facts, within the configured timeouts."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable

import pytest

from dicomguard.checks import nfs_001_export_to_everyone as nfs_001
from dicomguard.checks import nfs_002_exports_listed as nfs_002
from dicomguard.models import Endpoint, Status
from dicomguard.net.connector import Connector
from dicomguard.net.nfs import MOUNT_PROGRAM, PORTMAP_PROGRAM
from dicomguard.probes.nfs import NfsConfig, NfsFacts, probe, world_reason

from .rpcfake import (
    HOST,
    Call,
    Handler,
    accepted,
    denied_auth,
    drip,
    endless_fragments,
    exports_xdr,
    pmap_xdr,
    raw_server,
    rpc_server,
    serve,
    tarpit,
)

FAST = NfsConfig(rpc_timeout=0.5, time_budget=5.0)


def probe_server(handler: Handler, cfg: NfsConfig = FAST) -> tuple[NfsFacts, float]:
    async def go() -> tuple[NfsFacts, float]:
        async with serve(handler) as port:
            start = time.monotonic()
            facts = await probe(Endpoint(HOST, port, "nfs"), Connector(None, connect_timeout=1.0),
                                cfg)
            return facts, time.monotonic() - start
    return asyncio.run(go())


def probe_mountd(mountd: Callable[[Call], bytes | None], cfg: NfsConfig = FAST
                 ) -> NfsFacts:
    """A well-behaved portmapper whose DUMP points at a mountd answering with `mountd`."""

    async def go() -> NfsFacts:
        async with serve(rpc_server(mountd)) as mport:
            def portmapper(call: Call) -> bytes:
                assert call.program == PORTMAP_PROGRAM
                return accepted(call.xid, pmap_xdr([(PORTMAP_PROGRAM, 2, 6, 111),
                                                    (MOUNT_PROGRAM, 3, 6, mport)]))
            async with serve(rpc_server(portmapper)) as pport:
                return await probe(Endpoint(HOST, pport, "nfs"), Connector(None), cfg)
    return asyncio.run(go())


@pytest.mark.parametrize("name,handler", [
    ("random bytes", raw_server(os.urandom(700))),
    ("http", raw_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")),
    ("short record", raw_server(struct.pack(">I", 0x8000_0000 | 100) + b"\0" * 10)),
    ("huge record", raw_server(struct.pack(">I", 0xFFFF_FFFF), then_wait=True)),
    ("closes at once", raw_server(b"")),
])
def test_garbage_portmapper_is_an_error_in_the_facts(name: str, handler: Handler) -> None:
    facts, seconds = probe_server(handler)
    assert not facts.exports_listed and not facts.portmapper
    assert facts.error is not None and facts.error.startswith("portmapper:")
    assert seconds < 2.0, name
    assert nfs_001.evaluate(facts).status is Status.ERROR
    assert nfs_002.evaluate(facts).status is Status.ERROR


@pytest.mark.parametrize("handler", [tarpit, drip])
def test_tarpit_bounded_by_rpc_timeout(handler: Handler) -> None:
    facts, seconds = probe_server(handler)
    assert facts.error is not None and "no RPC reply within 0.5 s" in facts.error
    assert seconds < 0.5 + 1.0


def test_endless_fragments_bounded() -> None:
    facts, seconds = probe_server(endless_fragments)
    assert facts.error is not None
    assert "fragments" in facts.error or "larger than" in facts.error
    assert seconds < 1.5


def test_time_budget_bounds_the_whole_probe() -> None:
    facts, seconds = probe_server(drip, NfsConfig(rpc_timeout=30.0, time_budget=0.7))
    assert facts.error == "probe: time budget of 0.7 s exhausted"
    assert seconds < 1.5


def test_closed_portmapper_is_unknown_not_error() -> None:
    async def go() -> NfsFacts:
        return await probe(Endpoint(HOST, 1, "nfs"), Connector(None), FAST)
    facts = asyncio.run(go())
    assert facts.error is None and not facts.portmapper
    assert nfs_001.evaluate(facts).status is Status.UNKNOWN


def test_huge_export_list_truncated() -> None:
    many = [(f"/exports/study{i:05d}".encode(), [b"*"]) for i in range(5000)]
    facts = probe_mountd(lambda c: accepted(c.xid, exports_xdr(many)),
                         NfsConfig(rpc_timeout=2.0, max_exports=100))
    assert facts.exports_listed and facts.exports_truncated
    assert len(facts.exports) == 100
    outcome = nfs_001.evaluate(facts)
    assert outcome.status is Status.FAIL and outcome.evidence["exports_truncated"]
    assert len(outcome.evidence["exports"]) == nfs_001.MAX_LISTED


def test_reply_over_max_bytes_is_an_error() -> None:
    many = [(b"/x" * 500, [b"host%d" % i for i in range(50)]) for _ in range(200)]
    facts = probe_mountd(lambda c: accepted(c.xid, exports_xdr(many)),
                         NfsConfig(rpc_timeout=2.0, max_reply_bytes=64 * 1024))
    assert not facts.exports_listed
    assert facts.error is not None and "larger than 65536" in facts.error


def test_odd_encodings_made_printable() -> None:
    exports = [(b"/srv/\xe9chographie/\x1b[31mred", [b"*"]),
               (b"/srv/ok", [b"@radiology-netgroup", b"10.0.0.0/8"]),
               (b"/srv/world-net", [b"0.0.0.0/0"])]
    facts = probe_mountd(lambda c: accepted(c.xid, exports_xdr(exports)),
                         NfsConfig(show_phi=True))
    paths = [e.path for e in facts.exports]
    assert "\x1b" not in "".join(paths)
    assert paths[0].startswith("/srv/\\xe9chographie/")
    assert [e.world for e in facts.exports] == [True, False, True]


def test_auth_sys_retry_after_auth_error() -> None:
    def mountd(call: Call) -> bytes:
        if call.cred_flavor == 0:
            return denied_auth(call.xid, 5)        # AUTH_TOOWEAK
        return accepted(call.xid, exports_xdr([(b"/data", [])]))
    facts = probe_mountd(mountd)
    assert facts.exports_listed and facts.exports[0].world


def test_refused_export_list() -> None:
    facts = probe_mountd(lambda c: denied_auth(c.xid, 1))
    assert not facts.exports_listed and facts.error is None
    assert facts.exports_refused and "authentication error" in facts.exports_refused
    assert nfs_002.evaluate(facts).status is Status.PASS
    assert nfs_001.evaluate(facts).status is Status.UNKNOWN


def test_mountd_version_fallback() -> None:
    def mountd(call: Call) -> bytes:
        if call.version != 1:
            return accepted(call.xid, struct.pack(">II", 1, 1), accept_stat=2)
        return accepted(call.xid, exports_xdr([(b"/old", [b"everyone"])]))
    facts = probe_mountd(mountd)
    assert facts.mountd_version == 1 and facts.exports[0].world


def test_garbage_mountd_is_an_error() -> None:
    facts = probe_mountd(lambda c: accepted(c.xid, os.urandom(64) + b"\xff" * 8))
    assert facts.portmapper and not facts.exports_listed
    assert facts.error is not None and facts.error.startswith("mountd:")
    assert nfs_001.evaluate(facts).status is Status.ERROR


@pytest.mark.parametrize("groups,world", [
    ((), True), (("*",), True), (("0.0.0.0/0",), True), (("everyone",), True),
    (("(everyone)",), True), (("::/0",), True), (("10.0.0.0/8", "*"), True),
    (("10.0.0.0/8",), False), (("127.0.0.99",), False), (("@staff",), False),
    (("*.example.org",), False), (("0.0.0.0/1",), False),
])
def test_world_groups(groups: tuple[str, ...], world: bool) -> None:
    assert (world_reason(groups) is not None) is world
