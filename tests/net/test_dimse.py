"""DIMSE command sets, fragmentation and reassembly, data set codec (PS3.7 6.3, 8.1, PS3.8 E)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dicomguard.errors import ProtocolError
from dicomguard.net import dimse, pdu

pytestmark = pytest.mark.timeout(120)

ECHO_FIELDS: dimse.Command = {
    dimse.AffectedSOPClassUID: "1.2.840.10008.1.1",
    dimse.CommandField: dimse.C_ECHO_RQ,
    dimse.MessageID: 7,
    dimse.CommandDataSetType: dimse.NO_DATA_SET,
}


def test_command_round_trip_and_layout() -> None:
    raw = dimse.encode_command(ECHO_FIELDS)
    # (0000,0000) UL 4 = length of the rest
    assert raw[:8] == b"\x00\x00\x00\x00\x04\x00\x00\x00"
    assert struct.unpack("<I", raw[8:12])[0] == len(raw) - 12
    # the UID is padded with NUL to even length
    assert b"1.2.840.10008.1.1\x00" in raw
    decoded = dimse.decode_command(raw)
    assert decoded == {**ECHO_FIELDS, dimse.CommandGroupLength: len(raw) - 12}
    assert dimse.command_name(decoded) == "C-ECHO-RQ"


def test_command_text_fields_and_raw_elements() -> None:
    fields: dimse.Command = {
        dimse.CommandField: dimse.C_MOVE_RQ,
        dimse.MoveDestination: "DEST",
        dimse.ErrorComment: "odd",
        dimse.OffendingElement: b"\x10\x00\x10\x00",
        dimse.CommandDataSetType: 1,
    }
    decoded = dimse.decode_command(dimse.encode_command(fields))
    assert decoded[dimse.MoveDestination] == "DEST"
    assert decoded[dimse.ErrorComment] == "odd"
    assert decoded[dimse.OffendingElement] == b"\x10\x00\x10\x00"


def element(elem: int, value: bytes, group: int = 0) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


@pytest.mark.parametrize(
    "raw",
    [
        element(0x0100, b"\x30\x00", group=8),  # not group 0000
        element(0x0110, b"\x01\x00") + element(0x0100, b"\x30\x00"),  # out of order
        element(0x0100, b"\x30\x00\x00"),  # US of length 3
        element(0x0000, struct.pack("<I", 99)) + element(0x0100, b"\x30\x00"),  # bad group length
        element(0x0110, b"\x01\x00"),  # no CommandField
        element(0x0002, b"\xff\xfe") + element(0x0100, b"\x30\x00"),  # UID not ASCII
        b"\x00\x00\x00\x01\xff\xff\xff\x7f",  # length beyond data
        b"\x00\x00\x00",  # truncated
        bytes(70000),  # too long
    ],
)
def test_malformed_commands_rejected(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        dimse.decode_command(raw)


def test_status_categories() -> None:
    assert dimse.status_category(0) == "Success"
    assert dimse.status_category(0xFF00) == "Pending"
    assert dimse.status_category(0xFF01) == "Pending"
    assert dimse.status_category(0xFE00) == "Cancel"
    assert dimse.status_category(0xB000) == "Warning"
    assert dimse.status_category(0xA801) == "Failure"
    assert dimse.status_category(0xC000) == "Failure"


def split_pdus(stream: bytes) -> list[bytes]:
    out = []
    while stream:
        length = struct.unpack(">I", stream[2:6])[0]
        out.append(stream[: 6 + length])
        stream = stream[6 + length :]
    return out


@pytest.mark.parametrize("max_pdu", [0, 16384, 100, 9])
def test_fragment_and_reassemble(max_pdu: int) -> None:
    command = dimse.encode_command({**ECHO_FIELDS, dimse.CommandDataSetType: 1})
    dataset = bytes(range(256)) * 5
    stream = dimse.fragment(3, command, dataset, max_pdu)
    assembler = dimse.Reassembler([1, 3])
    messages = []
    for raw in split_pdus(stream):
        length = struct.unpack(">I", raw[2:6])[0]
        if max_pdu:
            assert length <= max_pdu
        decoded = pdu.decode_pdu(raw)
        assert isinstance(decoded, tuple)
        for pdv in decoded:
            message = assembler.add(pdv)
            if message is not None:
                messages.append(message)
    assert len(messages) == 1
    assert messages[0].context_id == 3
    assert messages[0].dataset == dataset
    assert messages[0].command_field == dimse.C_ECHO_RQ
    assert assembler.idle


def test_reassembler_discards_store_data() -> None:
    command = dimse.encode_command(
        {dimse.CommandField: dimse.C_STORE_RQ, dimse.MessageID: 1, dimse.CommandDataSetType: 1}
    )
    assembler = dimse.Reassembler([1], max_dataset_bytes=10)
    assembler.discard_store_data = True
    stream = dimse.fragment(1, command, bytes(1000), 200)
    message = None
    for raw in split_pdus(stream):
        for pdv in pdu.decode_p_data(raw[6:]):
            message = assembler.add(pdv) or message
    assert message is not None and message.dataset is None and message.dataset_length == 1000


def pdv(ctx: int, command: bool, last: bool, data: bytes) -> pdu.PDV:
    return pdu.PDV(ctx, command, last, data)


NO_DATA = dimse.encode_command(ECHO_FIELDS)
WITH_DATA = dimse.encode_command({**ECHO_FIELDS, dimse.CommandDataSetType: 1})


@pytest.mark.parametrize(
    "pdvs",
    [
        [pdv(5, True, True, NO_DATA)],  # context not accepted
        [pdv(1, False, True, b"data first")],
        [pdv(1, True, False, WITH_DATA[:10]), pdv(3, True, True, WITH_DATA[10:])],  # ctx change
        [pdv(1, True, True, WITH_DATA), pdv(1, True, True, WITH_DATA)],  # command after command
        [pdv(1, True, True, dimse.encode_command({dimse.CommandField: 0x30}))],  # no data set type
        [pdv(1, True, True, WITH_DATA), pdv(1, False, True, bytes(100))],  # data set too large
        [pdv(1, True, False, b"\x00" * 40000), pdv(1, True, False, b"\x00" * 40000)],
    ],
)
def test_reassembler_rejects_protocol_violations(pdvs: list[pdu.PDV]) -> None:
    assembler = dimse.Reassembler([1, 3], max_dataset_bytes=50)
    with pytest.raises(ProtocolError):
        for item in pdvs:
            assembler.add(item)


@pytest.mark.parametrize(
    "ts",
    [
        dimse.IMPLICIT_VR_LITTLE_ENDIAN,
        dimse.EXPLICIT_VR_LITTLE_ENDIAN,
        dimse.EXPLICIT_VR_BIG_ENDIAN,
        dimse.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ],
)
def test_dataset_round_trip(ts: str) -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "TESTPERSON^ALPHA"
    ds.StudyInstanceUID = "1.2.3.4"
    item = Dataset()
    item.Modality = "CT"
    ds.ScheduledProcedureStepSequence = [item]
    back = dimse.decode_dataset(dimse.encode_dataset(ds, ts), ts)
    assert back.PatientName == "TESTPERSON^ALPHA"
    assert back.ScheduledProcedureStepSequence[0].Modality == "CT"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x10\x00\x10\x00\xff\xff\x00\x00",  # length beyond data
        b"\x08\x00\x05\x00\x08\x00\x00\x00ISO_IR 1",  # truncated
        b"\x08\x00\x16\x00\x03\x00\x00\x00",
    ],
)
def test_malformed_dataset_is_protocol_error(raw: bytes) -> None:
    for ts in (
        dimse.IMPLICIT_VR_LITTLE_ENDIAN,
        dimse.EXPLICIT_VR_LITTLE_ENDIAN,
        dimse.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ):
        with contextlib.suppress(ProtocolError):
            dimse.decode_dataset(raw, ts)


FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_decode_command(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        dimse.decode_command(data)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_decode_dataset(data: bytes, implicit: bool) -> None:
    ts = dimse.IMPLICIT_VR_LITTLE_ENDIAN if implicit else dimse.EXPLICIT_VR_LITTLE_ENDIAN
    with contextlib.suppress(ProtocolError):
        dimse.decode_dataset(data, ts)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 3, 5]), st.booleans(), st.booleans(), st.binary(max_size=60)),
        max_size=8,
    )
)
def test_fuzz_reassembler(items: list[tuple[int, bool, bool, bytes]]) -> None:
    assembler = dimse.Reassembler([1, 3])
    try:
        for ctx, command, last, data in items:
            assembler.add(pdu.PDV(ctx, command, last, data))
    except ProtocolError:
        pass
