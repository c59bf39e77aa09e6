"""The lab's pure-Python servers, run as their own processes by `servers.start_lab`.

    python -m dicomguard.lab.pyservers <config.json>

The config names a `kind`:

- "verification": a pynetdicom Verification-only SCP (any called and calling AE title).
- "find": a pynetdicom Query/Retrieve FIND SCP (Patient and Study Root) over the synthetic
  studies in `data_dir`, with Verification; `require_called_aet` and `allowed_calling_aes`
  turn it into the AE-restricted variant. Stands in for Orthanc/dcmqrscp when those are missing.
- "store": a pynetdicom Storage SCP that accepts and discards (stands in for storescp).
- "hostile": asyncio listeners, one per entry of `listeners` ({address, port, behaviour}):
  "random-bytes" answers random bytes that are not a DICOM PDU, "bogus-associate-ac" answers
  0x02 (the A-ASSOCIATE-AC PDU type) followed by garbage, "tarpit" accepts and never answers.

Every listener binds the loopback address given to it, never a wildcard.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.multival import MultiValue

TARPIT_HOLD_SECONDS = 600.0
HOSTILE_READ_SECONDS = 2.0


def _check_loopback(address: str) -> None:
    if not address.startswith("127."):
        raise SystemExit(f"lab servers bind loopback addresses only, not {address!r}")


# ---------------------------------------------------------------------------------------------
# hostile listeners


async def _read_some(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(reader.read(65536), HOSTILE_READ_SECONDS)


def _random_reply(rng: random.Random, size: int = 512) -> bytes:
    data = bytearray(rng.randbytes(size))
    # Never start like a PDU (types 0x01-0x07), so this is garbage for any DICOM parser.
    data[0] = 0x47 if 0x01 <= data[0] <= 0x07 else data[0]
    return bytes(data)


def _bogus_ac(rng: random.Random) -> bytes:
    # PDU type 0x02 (A-ASSOCIATE-AC) with a reserved byte, an absurd length and no valid body.
    return b"\x02\xff" + b"\xff\xff\xff\xf0" + rng.randbytes(26)


def _hostile_handler(behaviour: str, rng: random.Random) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if behaviour == "tarpit":
                loop = asyncio.get_running_loop()
                deadline = loop.time() + TARPIT_HOLD_SECONDS
                while loop.time() < deadline:
                    try:
                        chunk = await asyncio.wait_for(reader.read(65536), 5.0)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
            else:
                await _read_some(reader)
                writer.write(_random_reply(rng) if behaviour == "random-bytes" else _bogus_ac(rng))
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort() if behaviour == "tarpit" else writer.close()

    return handle


async def _run_hostile(listeners: list[dict[str, Any]], seed: int) -> None:
    servers = []
    for index, spec in enumerate(listeners):
        _check_loopback(spec["address"])
        behaviour = spec["behaviour"]
        if behaviour not in ("random-bytes", "bogus-associate-ac", "tarpit"):
            raise SystemExit(f"unknown hostile behaviour {behaviour!r}")
        rng = random.Random(seed * 1000 + index)
        servers.append(
            await asyncio.start_server(
                _hostile_handler(behaviour, rng), spec["address"], spec["port"],
                reuse_address=True,
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


# ---------------------------------------------------------------------------------------------
# pynetdicom SCPs

VERIFICATION = "1.2.840.10008.1.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

_LEVEL_KEYS = {
    "PATIENT": ("PatientID",),
    "STUDY": ("PatientID", "StudyInstanceUID"),
    "SERIES": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


def _load_headers(data_dir: Path) -> list[Any]:
    import pydicom

    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(data_dir.rglob("*.dcm"))]


def _matches(value: object, query: object) -> bool:
    if query in (None, "", b""):
        return True  # universal matching
    if isinstance(query, list | tuple | MultiValue):
        return str(value) in {str(q) for q in query}  # UID list matching
    text = str(query)
    if "*" in text or "?" in text:
        return fnmatch.fnmatchcase(str(value), text)
    return str(value) == text


def _find_matches(headers: list[Any], identifier: Any) -> Iterator[Any]:
    from pydicom.dataset import Dataset

    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level not in _LEVEL_KEYS:
        return
    unique_key = _LEVEL_KEYS[level][-1]
    seen: set[str] = set()
    keywords = [e.keyword for e in identifier if e.keyword and e.keyword != "QueryRetrieveLevel"]
    for ds in headers:
        if not all(_matches(ds.get(k, ""), identifier.get(k)) for k in keywords if k in ds):
            continue
        if any(identifier.get(k) not in (None, "") and k not in ds for k in keywords):
            continue
        key = str(ds.get(unique_key, ""))
        if key in seen:
            continue
        seen.add(key)
        answer = Dataset()
        answer.QueryRetrieveLevel = level
        for k in keywords:
            setattr(answer, k, ds.get(k, ""))
        for k in _LEVEL_KEYS[level]:
            setattr(answer, k, ds.get(k, ""))
        if "SpecificCharacterSet" in ds:
            answer.SpecificCharacterSet = ds.SpecificCharacterSet
        yield answer


def _run_pynetdicom(config: dict[str, Any]) -> None:
    from pynetdicom import AE, StoragePresentationContexts, evt

    kind = config["kind"]
    address, port = config["address"], int(config["port"])
    _check_loopback(address)
    ae = AE(ae_title=config.get("ae_title", "LABSCP"))
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.require_called_aet = bool(config.get("require_called_aet", False))
    ae.require_calling_aet = list(config.get("allowed_calling_aes", []))
    ae.add_supported_context(VERIFICATION)
    handlers: list[Any] = []
    if kind == "find":
        headers = _load_headers(Path(config["data_dir"]))

        def on_find(event: Any) -> Iterator[tuple[int, Any]]:
            for answer in _find_matches(headers, event.identifier):
                yield 0xFF00, answer

        ae.add_supported_context(PATIENT_ROOT_FIND)
        ae.add_supported_context(STUDY_ROOT_FIND)
        handlers.append((evt.EVT_C_FIND, on_find))
    elif kind == "store":
        def on_store(event: Any) -> int:
            return 0x0000  # accepted and discarded

        for context in StoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax)
        handlers.append((evt.EVT_C_STORE, on_store))
    elif kind != "verification":
        raise SystemExit(f"unknown server kind {kind!r}")

    server = ae.start_server((address, port), block=False, evt_handlers=handlers)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    if server is not None:
        server.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dicomguard.lab.pyservers <config.json>", file=sys.stderr)
        return 64
    config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s",
    )
    if config["kind"] == "hostile":
        asyncio.run(_run_hostile(config["listeners"], int(config.get("seed", 7))))
    else:
        _run_pynetdicom(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
