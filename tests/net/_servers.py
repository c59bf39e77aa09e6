"""Loopback peers for the DICOM UL tests: a pynetdicom SCP in a thread, and small asyncio
servers that answer correctly, answer garbage, abort, or never answer. 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt

from dicomguard.net import dimse, pdu

CTImageStorage = "1.2.840.10008.5.1.4.1.1.2"
SecondaryCaptureImageStorage = "1.2.840.10008.5.1.4.1.1.7"
StudyRootQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.2.1"
StudyRootQueryRetrieveInformationModelMove = "1.2.840.10008.5.1.4.1.2.2.2"
StudyRootQueryRetrieveInformationModelGet = "1.2.840.10008.5.1.4.1.2.2.3"
Verification = "1.2.840.10008.1.1"


LOOPBACK = "127.0.0.1"

#: Invented people, never real ones.
INVENTED_NAMES = (
    "TESTPERSON^ALPHA",
    "TESTPERSON^BRAVO",
    "TESTPERSON^CHARLIE",
    "TESTPERSON^DELTA",
    "TESTPERSON^ECHO",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def synthetic_study(i: int) -> Dataset:
    """A synthetic CT instance header with an invented patient (no pixel data)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = INVENTED_NAMES[i % len(INVENTED_NAMES)]
    ds.PatientID = f"DG{i:04d}"
    ds.StudyDate = "20200101"
    ds.Modality = "CT"
    ds.QueryRetrieveLevel = "STUDY"
    return ds


@contextlib.contextmanager
def pynetdicom_scp(
    *,
    ae_title: str = "DGSCP",
    require_called: bool = False,
    require_calling: list[str] | None = None,
    studies: int = 3,
) -> Iterator[dict[str, Any]]:
    """A pynetdicom SCP on 127.0.0.1: Verification, Study Root FIND/MOVE/GET, CT/SC storage.

    Yields a dict with the port and what the handlers saw ("stored" SOP instance UIDs).
    """
    datasets = [synthetic_study(i) for i in range(studies)]
    seen: dict[str, Any] = {"stored": [], "cancelled": 0}

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        for ds in datasets:
            if event.is_cancelled:
                seen["cancelled"] += 1
                yield 0xFE00, None
                return
            out = Dataset()
            out.QueryRetrieveLevel = "STUDY"
            out.PatientName = ds.PatientName
            out.StudyInstanceUID = ds.StudyInstanceUID
            yield 0xFF00, out

    def on_store(event: evt.Event) -> int:
        seen["stored"].append(getattr(event.request, "AffectedSOPInstanceUID", None))
        return 0x0000

    def on_move(event: evt.Event) -> Iterator[Any]:
        yield None, None  # unknown move destination -> 0xA801

    def on_get(event: evt.Event) -> Iterator[Any]:
        yield len(datasets)
        for ds in datasets:
            if event.is_cancelled:
                seen["cancelled"] += 1
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    ae = AE(ae_title=ae_title)
    ae.require_called_aet = require_called
    if require_calling:
        ae.require_calling_aet = require_calling
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    ae.network_timeout = 5
    for uid in (
        Verification,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelGet,
        SecondaryCaptureImageStorage,
    ):
        ae.add_supported_context(uid)
    ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    handlers: list[Any] = [
        (evt.EVT_C_FIND, on_find),
        (evt.EVT_C_STORE, on_store),
        (evt.EVT_C_MOVE, on_move),
        (evt.EVT_C_GET, on_get),
    ]
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
    assert server is not None
    seen["port"] = server.server_address[1]
    try:
        yield seen
    finally:
        server.shutdown()


# -- asyncio peers ------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """Run ``handler`` for each connection on 127.0.0.1:<free port>; yields the port."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(wrapped, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        if tasks:  # let handlers see what the client sent last (e.g. an A-ABORT)
            await asyncio.wait(list(tasks), timeout=0.2)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(6)
    pdu_type, length = struct.unpack(">BxI", header)
    return pdu_type, await reader.readexactly(length)


def accept_for(rq: pdu.AssociateRequest, *, max_pdu_length: int = 16384) -> pdu.AssociateAccept:
    """Accept every proposed context with its first transfer syntax."""
    return pdu.AssociateAccept(
        called_ae=rq.called_ae,
        calling_ae=rq.calling_ae,
        application_context=pdu.DICOM_APPLICATION_CONTEXT,
        contexts=tuple(
            pdu.ContextResult(c.context_id, c.abstract_syntax, 0, c.transfer_syntaxes[0])
            for c in rq.contexts
        ),
        max_pdu_length=max_pdu_length,
        implementation_class_uid="1.2.3.4",
        implementation_version_name="LOOPBACK_SCP",
    )


def echo_rsp(context_id: int, request: bytes) -> bytes:
    """A C-ECHO-RSP (success) to the C-ECHO-RQ command carried in ``request`` (a P-DATA body)."""
    pdv = pdu.decode_p_data(request)[0]
    command = dimse.decode_command(pdv.data)
    rsp = dimse.encode_command(
        {
            dimse.AffectedSOPClassUID: "1.2.840.10008.1.1",
            dimse.CommandField: dimse.C_ECHO_RSP,
            dimse.MessageIDBeingRespondedTo: int(command[dimse.MessageID]),
            dimse.CommandDataSetType: dimse.NO_DATA_SET,
            dimse.Status: 0,
        }
    )
    return dimse.fragment(context_id, rsp, None, 16384)


def minimal_scp(
    after_accept: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
) -> Handler:
    """A minimal correct Verification SCP; ``after_accept`` replaces the P-DATA handling."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, body = await read_pdu(reader)
        rq = pdu.decode_associate_rq(body)
        writer.write(pdu.encode_associate_ac(accept_for(rq)))
        while True:
            pdu_type, body = await read_pdu(reader)
            if pdu_type == pdu.P_DATA_TF:
                if after_accept is not None:
                    await after_accept(writer)
                    continue
                writer.write(echo_rsp(rq.contexts[0].context_id, body))
            elif pdu_type == pdu.A_RELEASE_RQ:
                writer.write(pdu.RELEASE_RP)
                await writer.drain()
                return
            else:
                return

    return handler
