"""The async DICOM UL client against real peers (pynetdicom, dcmtk storescp) and hostile
asyncio peers (garbage, bogus A-ASSOCIATE-AC, tarpit, A-ABORT), all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomguard.errors import AssociationRejected, DimseError, ProtocolError, ReadTimeout
from dicomguard.net import dimse, pdu
from dicomguard.net.connector import Connector
from dicomguard.net.dicom_ul import (
    VERIFICATION_CONTEXT,
    Association,
    PresentationContext,
    associate,
    echo_once,
)

from ._servers import (
    LOOPBACK,
    Handler,
    free_port,
    minimal_scp,
    pynetdicom_scp,
    read_pdu,
    serve,
    synthetic_study,
)

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")

TS = (dimse.EXPLICIT_VR_LITTLE_ENDIAN, dimse.IMPLICIT_VR_LITTLE_ENDIAN)
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
CONTEXTS = (
    VERIFICATION_CONTEXT,
    PresentationContext(3, FIND, TS),
    PresentationContext(5, MOVE, TS),
    PresentationContext(7, GET, TS),
    PresentationContext(9, CT, TS),
    PresentationContext(11, SC, TS),
)


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


async def with_assoc(
    port: int,
    use: Callable[[Association], Awaitable[T]],
    *,
    called_ae: str = "DGSCP",
    calling_ae: str = "DICOMGUARD",
    read_timeout: float = 5.0,
    **kwargs: Any,
) -> T:
    connector = Connector(None, rate=0, per_host=4, connect_timeout=2.0)
    async with connector.open(LOOPBACK, port, "dicom") as (reader, writer):
        assoc = await associate(
            reader,
            writer,
            called_ae=called_ae,
            calling_ae=calling_ae,
            contexts=kwargs.pop("contexts", CONTEXTS),
            read_timeout=read_timeout,
            **kwargs,
        )
        return await use(assoc)


def study_query() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = ""
    ds.StudyInstanceUID = ""
    return ds


# -- pynetdicom SCP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scp() -> Iterator[dict[str, Any]]:
    with pynetdicom_scp(studies=3) as seen:
        yield seen


def test_echo_once_against_pynetdicom(scp: dict[str, Any]) -> None:
    async def go() -> Any:
        connector = Connector(None, rate=0)
        async with connector.open(LOOPBACK, scp["port"], "dicom") as (reader, writer):
            return await echo_once(
                reader, writer, called_ae="DGSCP", calling_ae="DG", read_timeout=5
            )

    result = run(go())
    assert result.status == 0
    assert result.released
    assert result.accept.implementation_version_name == "PYNETDICOM_304"
    assert result.accept.accepted("1.2.840.10008.1.1") is not None


def test_negotiation_details(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> pdu.AssociateAccept:
        await assoc.release()
        return assoc.accept

    accept = run(with_assoc(scp["port"], use, scp_scu_roles=[CT]))
    assert {c.abstract_syntax for c in accept.contexts if c.result == 0} == {
        "1.2.840.10008.1.1",
        FIND,
        MOVE,
        GET,
        CT,
        SC,
    }
    assert accept.max_pdu_length > 0
    assert pdu.RoleSelection(CT, True, True) in accept.roles
    assert accept.application_context == pdu.DICOM_APPLICATION_CONTEXT


def test_c_find_returns_matches(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> Any:
        async with assoc:
            return await assoc.c_find(FIND, study_query(), max_records=10)

    result = run(with_assoc(scp["port"], use))
    assert result.status == 0
    assert not result.truncated
    assert [str(m.PatientName) for m in result.matches] == [
        "TESTPERSON^ALPHA",
        "TESTPERSON^BRAVO",
        "TESTPERSON^CHARLIE",
    ]


def test_c_find_max_records_sends_cancel(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> Any:
        first = await assoc.c_find(FIND, study_query(), max_records=1)
        echo = await assoc.c_echo()  # the association is still usable after the cancel
        await assoc.release()
        return first, echo

    result, echo = run(with_assoc(scp["port"], use))
    assert result.truncated
    assert len(result.matches) == 1
    assert result.status in (0xFE00, 0x0000)
    assert echo == 0


def test_c_store(scp: dict[str, Any]) -> None:
    ds = synthetic_study(0)
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = generate_uid()

    async def use(assoc: Association) -> int:
        async with assoc:
            return await assoc.c_store(ds, sop_class_uid=SC, sop_instance_uid=ds.SOPInstanceUID)

    assert run(with_assoc(scp["port"], use)) == 0
    assert ds.SOPInstanceUID in scp["stored"]


def test_c_move_unknown_destination(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> Any:
        async with assoc:
            return await assoc.c_move(MOVE, study_query(), "NOSUCHAE")

    result = run(with_assoc(scp["port"], use))
    assert result.status == 0xA801


def test_c_get_cancels_after_max_instances(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> Any:
        async with assoc:
            return await assoc.c_get(GET, study_query(), max_instances=1)

    result = run(with_assoc(scp["port"], use, scp_scu_roles=[CT]))
    assert result.instances_received >= 1
    assert result.bytes_received > 0
    assert result.cancelled
    assert result.status is not None


def test_c_get_all_instances(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> Any:
        async with assoc:
            return await assoc.c_get(GET, study_query(), max_instances=10)

    result = run(with_assoc(scp["port"], use, scp_scu_roles=[CT]))
    assert result.status == 0
    assert result.instances_received == 3
    assert not result.cancelled
    assert result.counts.completed == 3


def test_unaccepted_service_is_dimse_error(scp: dict[str, Any]) -> None:
    async def use(assoc: Association) -> None:
        async with assoc:
            await assoc.c_find("1.2.840.10008.5.1.4.31", study_query(), max_records=1)

    with pytest.raises(DimseError, match="no accepted presentation context"):
        run(with_assoc(scp["port"], use))


def test_called_ae_title_required() -> None:
    with pynetdicom_scp(ae_title="RIGHTAE", require_called=True) as seen:
        with pytest.raises(AssociationRejected) as info:
            run(with_assoc(seen["port"], Association.release, called_ae="WRONGAE"))
        # and the right title is accepted
        assert run(with_assoc(seen["port"], Association.release, called_ae="RIGHTAE"))
    exc = info.value
    assert (exc.result, exc.source, exc.reason) == (1, 1, 7)
    assert exc.description == "rejected-permanent by service-user: called-AE-title-not-recognized"


def test_calling_ae_title_required() -> None:
    with pynetdicom_scp(require_calling=["FRIEND"]) as seen:
        with pytest.raises(AssociationRejected) as info:
            run(with_assoc(seen["port"], Association.release, calling_ae="STRANGER"))
        assert run(with_assoc(seen["port"], Association.release, calling_ae="FRIEND"))
    assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 3)
    assert "calling-AE-title-not-recognized" in info.value.description


# -- dcmtk storescp ----------------------------------------------------------------------------


@pytest.mark.servers
def test_storescp_echo_and_store() -> None:
    binary = shutil.which("storescp")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("storescp (dcmtk) is required under CI=true")
        pytest.skip("storescp (dcmtk) not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen(
            [binary, "--aetitle", "STORESCP", "--output-directory", out, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    result = run(echo_on(port), 5)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert result.status == 0
            assert result.accept.implementation_class_uid.startswith("1.2.276.0.7230010.3")
            ds = synthetic_study(1)
            ds.SOPClassUID = SC
            uid = generate_uid()
            ds.SOPInstanceUID = uid

            async def use(assoc: Association) -> int:
                async with assoc:
                    return await assoc.c_store(ds, sop_class_uid=SC, sop_instance_uid=uid)

            assert run(with_assoc(port, use, called_ae="STORESCP")) == 0
            deadline = time.monotonic() + 5
            while not os.listdir(out) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(os.listdir(out)) == 1
        finally:
            proc.terminate()
            proc.wait(10)


async def echo_on(port: int) -> Any:
    connector = Connector(None, rate=0)
    async with connector.open(LOOPBACK, port, "dicom") as (reader, writer):
        return await echo_once(
            reader, writer, called_ae="STORESCP", calling_ae="DG", read_timeout=3
        )


# -- hostile asyncio peers ---------------------------------------------------------------------


async def against(handler: Handler, read_timeout: float = 1.0) -> Any:
    async with serve(handler) as port:
        connector = Connector(None, rate=0)
        async with connector.open(LOOPBACK, port, "dicom") as (reader, writer):
            return await echo_once(
                reader, writer, called_ae="ANY", calling_ae="DG", read_timeout=read_timeout
            )


def answer(data: bytes, *, then_close: bool = True) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_pdu(reader)
        writer.write(data)
        await writer.drain()
        if not then_close:
            await asyncio.sleep(30)

    return handler


def test_minimal_server_echo() -> None:
    result = run(against(minimal_scp()))
    assert result.status == 0 and result.released


@pytest.mark.parametrize("close", [True, False])
def test_random_bytes_is_protocol_error(close: bool) -> None:
    rng = random.Random(1234)
    for _ in range(5):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        with pytest.raises((ProtocolError, ReadTimeout)) as info:
            run(against(answer(garbage, then_close=close), read_timeout=0.5))
        if close:
            assert isinstance(info.value, ProtocolError)


def test_bogus_associate_ac_fails_fast() -> None:
    """0x02 then garbage: nmap's dicom-ping would call this DICOM; pynetdicom hung 60 s."""
    bogus = b"\x02\x00\x00\x00\x01\x00" + bytes(random.Random(7).randrange(256) for _ in range(256))
    started = time.monotonic()
    with pytest.raises(ProtocolError, match="A-ASSOCIATE-AC"):
        run(against(answer(bogus, then_close=False), read_timeout=2.0))
    assert time.monotonic() - started < 1.0


def test_bogus_associate_ac_length_never_arrives() -> None:
    """A plausible header announcing more bytes than ever come: bounded by the timeout."""
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        run(against(answer(b"\x02\x00\x00\x00\x01\x00" + bytes(20), then_close=False), 0.5))
    assert time.monotonic() - started < 0.5 + 1.0


def test_huge_associate_ac_length_rejected() -> None:
    with pytest.raises(ProtocolError, match="out of bounds"):
        run(against(answer(b"\x02\x00\x7f\xff\xff\xff", then_close=False), 2.0))


def test_tarpit_read_timeout() -> None:
    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    with pytest.raises(ReadTimeout) as info:
        run(against(tarpit, read_timeout=0.5))
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 0.5 + 1.0
    assert info.value.address == LOOPBACK and info.value.protocol == "dicom"


def test_slow_drip_is_bounded_per_pdu() -> None:
    """One byte every 100 ms of a valid A-ASSOCIATE-RJ: the timeout covers the whole PDU."""

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_pdu(reader)
        for b in pdu.encode_associate_rj(1, 1, 7):
            writer.write(bytes((b,)))
            await asyncio.sleep(0.1)

    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        run(against(drip, read_timeout=0.5))
    assert time.monotonic() - started < 1.5


def test_abort_during_negotiation() -> None:
    with pytest.raises(ProtocolError, match="A-ABORT by service-provider") as info:
        run(against(answer(pdu.encode_abort(2, 2))))
    assert not isinstance(info.value, AssociationRejected)


def test_closed_without_answer() -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_pdu(reader)

    with pytest.raises(ProtocolError, match="connection closed"):
        run(against(close))


def test_unexpected_pdu_during_negotiation() -> None:
    with pytest.raises(ProtocolError, match="unexpected A-RELEASE-RP"):
        run(against(answer(pdu.RELEASE_RP)))


def test_invalid_ac_gets_an_abort() -> None:
    """A well-framed but invalid A-ASSOCIATE-AC (unproposed context id): A-ABORT is sent."""
    seen: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_pdu(reader)
        rq = pdu.decode_associate_rq(body)
        bad = pdu.AssociateAccept(
            rq.called_ae,
            rq.calling_ae,
            pdu.DICOM_APPLICATION_CONTEXT,
            (pdu.ContextResult(99, "", 0, dimse.IMPLICIT_VR_LITTLE_ENDIAN),),
            16384,
            "1.2.3",
            None,
        )
        writer.write(pdu.encode_associate_ac(bad))
        pdu_type, _ = await read_pdu(reader)
        seen.append(pdu_type)

    with pytest.raises(ProtocolError, match="never proposed"):
        run(against(handler))
    assert seen == [pdu.A_ABORT]


def test_abort_mid_association_is_dimse_error() -> None:
    async def abort(writer: asyncio.StreamWriter) -> None:
        writer.write(pdu.encode_abort(2, 0))

    with pytest.raises(DimseError, match="aborted the association"):
        run(against(minimal_scp(abort)))


def test_garbage_mid_association_is_protocol_error() -> None:
    async def garbage(writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x04\x00\x00\x00\x00\x08" + b"\xff" * 8)

    with pytest.raises(ProtocolError):
        run(against(minimal_scp(garbage)))


def test_bad_command_mid_association_is_protocol_error() -> None:
    async def bad(writer: asyncio.StreamWriter) -> None:
        writer.write(pdu.encode_p_data([(1, 3, b"\x00\x00\x00\x01\x02\x00\x00\x00\x30\x00")]))

    with pytest.raises(ProtocolError, match="without CommandDataSetType"):
        run(against(minimal_scp(bad)))


def test_wrong_message_id_is_protocol_error() -> None:
    async def wrong(writer: asyncio.StreamWriter) -> None:
        rsp = dimse.encode_command(
            {
                dimse.CommandField: dimse.C_ECHO_RSP,
                dimse.MessageIDBeingRespondedTo: 999,
                dimse.CommandDataSetType: dimse.NO_DATA_SET,
                dimse.Status: 0,
            }
        )
        writer.write(dimse.fragment(1, rsp, None, 0))

    with pytest.raises(ProtocolError, match="not 1"):
        run(against(minimal_scp(wrong)))


def test_silence_after_accept_is_read_timeout() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        return None

    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        run(against(minimal_scp(silent), read_timeout=0.5))
    assert time.monotonic() - started < 1.5


def release_peer(behaviour: str) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_pdu(reader)
        rq = pdu.decode_associate_rq(body)
        from ._servers import accept_for, echo_rsp

        writer.write(pdu.encode_associate_ac(accept_for(rq)))
        _, body = await read_pdu(reader)
        writer.write(echo_rsp(1, body))
        await read_pdu(reader)  # A-RELEASE-RQ
        if behaviour == "abort":
            writer.write(pdu.encode_abort(0, 0))
        elif behaviour == "collision":
            writer.write(pdu.RELEASE_RQ + pdu.RELEASE_RP)
        elif behaviour == "silent":
            await asyncio.sleep(30)
        await writer.drain()

    return handler


@pytest.mark.parametrize(
    ("behaviour", "clean"),
    [("close", False), ("abort", False), ("silent", False), ("collision", True)],
)
def test_release_tolerates_peers(behaviour: str, clean: bool) -> None:
    started = time.monotonic()
    result = run(against(release_peer(behaviour), read_timeout=0.5))
    assert result.status == 0
    assert result.released is clean
    assert time.monotonic() - started < 2.0


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_fuzz_association_against_random_answers(data: bytes) -> None:
    with contextlib.suppress(ProtocolError, ReadTimeout):
        run(against(answer(data), read_timeout=0.3), 5)
