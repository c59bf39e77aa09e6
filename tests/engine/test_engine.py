"""Engine behaviour against loopback servers written for the test: per-host cap, scope guard,
tarpits and garbage bounded by their timeouts, Ctrl-C keeping what was found."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopservers import ThreadedServers, free_ports

from dicomguard.engine.scan import EndpointResult, ScanConfig, scan_batch
from dicomguard.engine.workers import scan_parallel
from dicomguard.errors import OutOfScopeError
from dicomguard.net.pdu import encode_associate_rj
from dicomguard.probes.dicom import DicomProbeConfig
from dicomguard.scope import build_scope
from dicomguard.store.db import Store

CAP_ADDRESS = "127.0.0.31"


class CountingServer:
    """Answers every A-ASSOCIATE-RQ with a well-formed A-ASSOCIATE-RJ after a delay, on several
    ports of one address, and records the highest number of simultaneous connections."""

    def __init__(self, address: str, ports: list[int], delay: float) -> None:
        self.delay = delay
        self.current = 0
        self.peak = 0
        self.total = 0
        self.servers = ThreadedServers([(self._handle, address, p) for p in ports])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.current += 1
        self.total += 1
        self.peak = max(self.peak, self.current)
        try:
            header = await reader.readexactly(6)
            await reader.readexactly(int.from_bytes(header[2:], "big"))
            await asyncio.sleep(self.delay)
            writer.write(encode_associate_rj(1, 1, 1))  # permanent, service-user, no reason
            await writer.drain()
            await reader.read(1)
        finally:
            self.current -= 1

    def __enter__(self) -> CountingServer:
        self.servers.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.servers.__exit__(*exc)


def _cfg(ports: tuple[int, ...], per_host: int, **probe: object) -> ScanConfig:
    return ScanConfig(ports=ports, rate=0, per_host=per_host, connect_timeout=2.0,
                      dicom=DicomProbeConfig(read_timeout=3.0, tls=False, **probe))  # type: ignore[arg-type]


@pytest.mark.parametrize("per_host", [1, 2, 3])
def test_per_host_cap_is_exact(per_host: int) -> None:
    ports = free_ports(CAP_ADDRESS, 6)
    with CountingServer(CAP_ADDRESS, ports, delay=0.25) as server:
        scope = build_scope([CAP_ADDRESS])
        results = scan_batch(scope.targets(), _cfg(tuple(ports), per_host), guard=scope)
    assert server.total == 6
    assert server.peak == per_host
    assert len(results) == 6
    assert all(r.service is not None and r.service.facts["dicom"] for r in results)


def test_workers_keep_the_per_host_cap_and_find_the_same() -> None:
    ports = free_ports(CAP_ADDRESS, 6)
    other = "127.0.0.35"
    other_ports = free_ports(other, 6)
    server = CountingServer(CAP_ADDRESS, ports, delay=0.2)
    server.servers.listeners += [(server._handle, other, p) for p in other_ports]
    with server:
        scope = build_scope([f"{CAP_ADDRESS}:{p}" for p in ports]
                            + [f"{other}:{p}" for p in other_ports])
        seen: list[EndpointResult] = []

        class Collect:
            def started(self, total: int | None) -> None:
                pass

            def endpoint_done(self, result: EndpointResult) -> None:
                seen.append(result)

        results = scan_parallel(scope.targets(), _cfg((), 2), guard=scope, workers=2,
                                observer=Collect())
    assert server.total == 12
    assert server.peak <= 4  # two hosts, at most two connections each
    assert len(results) == len(seen) == 12
    assert {(r.endpoint.address, r.endpoint.port) for r in results} == {
        (CAP_ADDRESS, p) for p in ports} | {(other, p) for p in other_ports}


def test_no_connection_outside_scope() -> None:
    ports = free_ports("127.0.0.32", 1)
    with CountingServer("127.0.0.32", ports, delay=0) as server:
        scope = build_scope(["127.0.0.33"])
        outside = build_scope(["127.0.0.32"])
        with pytest.raises(OutOfScopeError):
            scan_batch(outside.targets(), _cfg(tuple(ports), 2), guard=scope)
    assert server.total == 0


@pytest.fixture()
def hostile() -> Iterator[dict[str, int]]:
    """A tarpit, a garbage talker and a bogus-AC talker on 127.0.0.34."""
    address = "127.0.0.34"
    ports = dict(zip(("tarpit", "garbage", "bogus_ac"), free_ports(address, 3), strict=True))

    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n" + os.urandom(200))
        await writer.drain()
        await asyncio.sleep(5)

    async def bogus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x02" + os.urandom(40))
        await writer.drain()
        await asyncio.sleep(5)

    with ThreadedServers([(tarpit, address, ports["tarpit"]),
                          (garbage, address, ports["garbage"]),
                          (bogus, address, ports["bogus_ac"])]):
        yield ports


def test_hostile_ports_never_dicom_and_bounded_by_timeouts(hostile: dict[str, int]) -> None:
    address = "127.0.0.34"
    scope = build_scope([f"{address}:{hostile[k]}" for k in ("tarpit", "garbage", "bogus_ac")])
    cfg = ScanConfig(ports=(), rate=0, per_host=3, connect_timeout=1.0,
                     dicom=DicomProbeConfig(read_timeout=1.0, tls=True, tls_timeout=1.0))
    start = time.monotonic()
    results = scan_batch(scope.targets(), cfg, guard=scope)
    elapsed = time.monotonic() - start
    assert elapsed < 4.0, elapsed
    assert len(results) == 3
    for r in results:
        assert r.service is not None and r.service.facts["dicom"] is False
        assert r.findings == ()
        assert r.service.endpoint.protocol != "dicom"


def test_ctrl_c_keeps_what_was_found(tmp_path: Path, hostile: dict[str, int]) -> None:
    """SIGINT during a scan stuck on a tarpit: the process exits promptly, the database holds
    the scan marked interrupted, with the endpoint that had already answered."""
    address = "127.0.0.34"
    db = tmp_path / "scans.sqlite"
    cmd = [sys.executable, "-m", "dicomguard", "scan",
           f"{address}:{hostile['garbage']}", f"{address}:{hostile['tarpit']}",
           "--only-ports", "1", "--read-timeout", "60", "--no-tls", "--db", str(db),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert "interrupted" in err
    assert proc.returncode == 130  # interrupted, and no finding (garbage is not DICOM)
    with Store(str(db)) as store:
        [summary] = store.list_scans()
        assert summary.state == "interrupted"
        scan = store.load_scan(summary.scan_id)
    assert [s.endpoint.port for s in scan.services] == [hostile["garbage"]]
    assert scan.services[0].facts["dicom"] is False
