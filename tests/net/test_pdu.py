"""PDU codec: round trips, strict rejection of malformed PDUs, fuzzing (PS3.8 9.3)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomguard.errors import ProtocolError
from dicomguard.net import pdu

pytestmark = pytest.mark.timeout(120)

VERIFICATION = "1.2.840.10008.1.1"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IVRLE = "1.2.840.10008.1.2"
EVRLE = "1.2.840.10008.1.2.1"

PROPOSED = (
    pdu.PresentationContext(1, VERIFICATION, (EVRLE, IVRLE)),
    pdu.PresentationContext(3, FIND, (IVRLE,)),
)

ACCEPT = pdu.AssociateAccept(
    called_ae="ANY-SCP",
    calling_ae="DICOMGUARD",
    application_context=pdu.DICOM_APPLICATION_CONTEXT,
    contexts=(
        pdu.ContextResult(1, VERIFICATION, 0, IVRLE),
        pdu.ContextResult(3, FIND, 3, None),
    ),
    max_pdu_length=16384,
    implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7",
    implementation_version_name="OFFIS_DCMTK_367",
    roles=(pdu.RoleSelection("1.2.840.10008.5.1.4.1.1.2", True, True),),
    max_operations_invoked=1,
    max_operations_performed=1,
)


def valid_ac() -> bytes:
    return pdu.encode_associate_ac(ACCEPT)


def build_ac(items: bytes, *, version: int = 1, pdu_type: int = 2) -> bytes:
    body = struct.pack(">HH", version, 0) + b"ANY-SCP".ljust(16) + b"DG".ljust(16) + bytes(32)
    body += items
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


APP = item(0x10, pdu.DICOM_APPLICATION_CONTEXT.encode())
CTX1 = item(0x21, bytes((1, 0, 0, 0)) + item(0x40, IVRLE.encode()))
USER = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3"))


# -- round trips -------------------------------------------------------------------------------


def test_associate_ac_round_trip() -> None:
    decoded = pdu.decode_pdu(valid_ac(), proposed=PROPOSED)
    assert decoded == ACCEPT
    assert isinstance(decoded, pdu.AssociateAccept)
    assert decoded.accepted(VERIFICATION) == ACCEPT.contexts[0]
    assert decoded.accepted(FIND) is None
    assert decoded.deviations == ()


def test_associate_rq_round_trip_and_layout() -> None:
    roles = (pdu.RoleSelection("1.2.840.10008.5.1.4.1.1.2", True, True),)
    raw = pdu.encode_associate_rq("SCP", "DG", PROPOSED, 65536, "2.25.1", "DICOMGUARD_01", roles)
    assert raw[0] == 1 and raw[1] == 0
    assert struct.unpack(">I", raw[2:6])[0] == len(raw) - 6
    assert raw[6:8] == b"\x00\x01"  # protocol version
    assert raw[10:26] == b"SCP".ljust(16) and raw[26:42] == b"DG".ljust(16)
    rq = pdu.decode_pdu(raw)
    assert isinstance(rq, pdu.AssociateRequest)
    assert rq.contexts == PROPOSED
    assert rq.max_pdu_length == 65536
    assert rq.implementation_class_uid == "2.25.1"
    assert rq.implementation_version_name == "DICOMGUARD_01"
    assert rq.roles == roles


def test_associate_rq_is_cached() -> None:
    a = pdu.encode_associate_rq("SCP", "DG", PROPOSED, 65536, "2.25.1", "X")
    b = pdu.encode_associate_rq("SCP", "DG", PROPOSED, 65536, "2.25.1", "X")
    assert a is b


@pytest.mark.parametrize(
    ("result", "source", "reason", "text"),
    [
        (1, 1, 7, "rejected-permanent by service-user: called-AE-title-not-recognized"),
        (1, 1, 3, "rejected-permanent by service-user: calling-AE-title-not-recognized"),
        (
            2,
            3,
            1,
            "rejected-transient by service-provider (presentation related function): "
            "temporary-congestion",
        ),
        (
            1,
            2,
            2,
            "rejected-permanent by service-provider (ACSE related function): "
            "protocol-version-not-supported",
        ),
    ],
)
def test_reject_round_trip(result: int, source: int, reason: int, text: str) -> None:
    rj = pdu.decode_pdu(pdu.encode_associate_rj(result, source, reason))
    assert rj == pdu.AssociateReject(result, source, reason)
    assert isinstance(rj, pdu.AssociateReject)
    assert rj.description == text


def test_abort_release_p_data_round_trip() -> None:
    ab = pdu.decode_pdu(pdu.encode_abort(2, 1))
    assert isinstance(ab, pdu.Abort)
    assert ab.description == "A-ABORT by service-provider: unrecognized-PDU"
    assert pdu.decode_pdu(pdu.RELEASE_RQ) == pdu.ReleaseRequest()
    assert pdu.decode_pdu(pdu.RELEASE_RP) == pdu.ReleaseReply()
    raw = pdu.encode_p_data([(1, 3, b"cmd"), (1, 2, b"data")])
    assert pdu.decode_pdu(raw) == (pdu.PDV(1, True, True, b"cmd"), pdu.PDV(1, False, True, b"data"))


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        pdu.encode_associate_rq("X" * 17, "DG", PROPOSED, 0, "2.25.1", None)
    with pytest.raises(ValueError):
        pdu.encode_associate_rq("SCP\n", "DG", PROPOSED, 0, "2.25.1", None)
    with pytest.raises(ValueError):
        pdu.encode_associate_rq("SCP", "DG", PROPOSED, 0, "1.02.3", None)
    with pytest.raises(ValueError):
        pdu.encode_associate_rq(
            "SCP", "DG", (pdu.PresentationContext(2, FIND, (IVRLE,)),), 0, "2.25.1", None
        )
    with pytest.raises(ValueError):
        pdu.encode_associate_rq("SCP", "DG", (), 0, "2.25.1", None)


# -- leniency where the standard or real servers require it ------------------------------------


def test_tolerated_deviations_are_recorded() -> None:
    ctx_rejected_empty_ts = item(0x21, bytes((3, 0, 3, 0)) + item(0x40, b""))
    user = item(
        0x50,
        item(0x51, struct.pack(">I", 0)) + item(0x52, b"1.2.840.0099.1\x00") + item(0x5F, b"xx"),
    )
    raw = build_ac(APP + CTX1 + ctx_rejected_empty_ts + user + item(0x77, b"?"))
    raw = raw[:1] + b"\xff" + raw[2:]  # reserved byte of the header: "not tested"
    ac = pdu.decode_pdu(raw, proposed=PROPOSED)
    assert isinstance(ac, pdu.AssociateAccept)
    assert ac.implementation_class_uid == "1.2.840.0099.1"
    assert ac.max_pdu_length == 0
    assert ac.contexts[1] == pdu.ContextResult(3, FIND, 3, None)
    assert any("leading zeros" in d for d in ac.deviations)
    assert any("0x5f" in d for d in ac.deviations)
    assert any("0x77" in d for d in ac.deviations)


def test_missing_user_information_and_unanswered_context_tolerated() -> None:
    ac = pdu.decode_pdu(build_ac(APP + CTX1), proposed=PROPOSED)
    assert isinstance(ac, pdu.AssociateAccept)
    assert "no user information item" in ac.deviations
    assert any("not answered" in d for d in ac.deviations)


# -- strict rejection --------------------------------------------------------------------------


MALFORMED = {
    "unknown PDU type": b"\x08\x00\x00\x00\x00\x04\x00\x00\x00\x00",
    "HTTP reply": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    "SSH banner": b"SSH-2.0-OpenSSH_9.2\r\n",
    "0x02 then garbage": b"\x02" + b"\xa5" * 200,
    "AC header only": b"\x02\x00\x00\x00\x00\x00",
    "AC length too large": b"\x02\x00\x00\x20\x00\x00" + bytes(100),
    "AC length beyond data": build_ac(APP + CTX1 + USER)[:-3],
    "RJ wrong length": b"\x03\x00\x00\x00\x00\x05\x00\x01\x01\x07\x00",
    "RJ bad result": b"\x03\x00\x00\x00\x00\x04\x00\x03\x01\x07",
    "RJ bad source": b"\x03\x00\x00\x00\x00\x04\x00\x01\x04\x07",
    "abort bad source": b"\x07\x00\x00\x00\x00\x04\x00\x00\x09\x00",
    "release wrong length": b"\x06\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00",
    "protocol version 0": build_ac(APP + CTX1 + USER, version=0),
    "no application context": build_ac(CTX1 + USER),
    "wrong application context": build_ac(item(0x10, b"1.2.3.4") + CTX1 + USER),
    "two application contexts": build_ac(APP + APP + CTX1 + USER),
    "app context not a UID": build_ac(item(0x10, b"hello") + CTX1 + USER),
    "unproposed context id": build_ac(
        APP + item(0x21, bytes((5, 0, 0, 0)) + item(0x40, IVRLE.encode())) + USER
    ),
    "context answered twice": build_ac(APP + CTX1 + CTX1 + USER),
    "unproposed transfer syntax": build_ac(
        APP + item(0x21, bytes((3, 0, 0, 0)) + item(0x40, EVRLE.encode())) + USER
    ),
    "accepted without transfer syntax": build_ac(APP + item(0x21, bytes((1, 0, 0, 0))) + USER),
    "result out of range": build_ac(
        APP + item(0x21, bytes((1, 0, 9, 0)) + item(0x40, IVRLE.encode())) + USER
    ),
    "item length overruns": build_ac(APP + CTX1 + b"\x50\x00\x10\x00\x51"),
    "truncated item header": build_ac(APP + CTX1 + b"\x50\x00"),
    "max length sub-item wrong size": build_ac(APP + CTX1 + item(0x50, item(0x51, b"\x00\x40"))),
    "non printable AE title": build_ac(APP + CTX1 + USER)[:12]
    + b"\x01"
    + build_ac(APP + CTX1 + USER)[13:],
    "version name too long": build_ac(APP + CTX1 + item(0x50, item(0x55, b"A" * 17))),
    "bad role selection": build_ac(
        APP + CTX1 + item(0x50, item(0x54, b"\x00\x03" + b"1.2" + b"\x02\x00"))
    ),
    "tiny max PDU": build_ac(APP + CTX1 + item(0x50, item(0x51, struct.pack(">I", 3)))),
    "P-DATA without PDVs": b"\x04\x00\x00\x00\x00\x00",
    "PDV length inconsistent": b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x09\x01\x03\x00\x00",
    "PDV reserved control bits": pdu.encode_p_data([(1, 0x13, b"x")]),
    "PDV even context id": pdu.encode_p_data([(2, 3, b"x")]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_pdus_rejected(name: str) -> None:
    with pytest.raises(ProtocolError):
        pdu.decode_pdu(MALFORMED[name], proposed=PROPOSED, max_p_data=70000)


def test_p_data_over_limit_rejected() -> None:
    raw = pdu.encode_p_data([(1, 3, bytes(1000))])
    with pytest.raises(ProtocolError, match="out of bounds"):
        pdu.decode_pdu(raw, max_p_data=500)


# -- fuzzing -----------------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        pdu.decode_pdu(data, proposed=PROPOSED)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    decode_or_protocol_error(data)


@FUZZ
@given(st.integers(min_value=1, max_value=7), st.binary(max_size=300))
def test_fuzz_valid_header_random_body(pdu_type: int, body: bytes) -> None:
    decode_or_protocol_error(struct.pack(">BBI", pdu_type, 0, len(body)) + body)


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_ac(data: st.DataObject) -> None:
    raw = bytearray(valid_ac())
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "truncate":
            del raw[pos:]
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del raw[pos : pos + data.draw(st.integers(1, 8))]
    decode_or_protocol_error(bytes(raw))
    # and with the header length fixed up, so the body decoders see the mutation
    if len(raw) >= 6:
        raw[2:6] = struct.pack(">I", len(raw) - 6)
        decode_or_protocol_error(bytes(raw))
