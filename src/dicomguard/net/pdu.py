"""DICOM Upper Layer PDUs: encoding and strict decoding (PS3.8 section 9.3, PS3.7 Annex D).

The decoders are the line between "a port that answered" and "a DICOM server": everything the
peer sent is checked against the structure PS3.8 section 9.3 defines, and anything that does not
fit raises :class:`~dicomguard.errors.ProtocolError` (never another exception, never a hang: the
decoders are pure functions over bytes already read).

Leniency is deliberate and limited to fields the standard itself says are "not tested" on
receipt or where deployed servers are known to deviate; each such tolerance that carries
information is recorded in ``AssociateAccept.deviations`` so a reviewer sees it:

* the reserved byte of the PDU header and of items and the 32 reserved bytes of the
  A-ASSOCIATE-AC (PS3.8 9.3.3 says: "shall not be tested");
* the called/calling AE title fields of the A-ASSOCIATE-AC (same rule) are decoded but only
  required to be printable ASCII (NUL padding tolerated);
* trailing NUL or space padding on UIDs inside items;
* leading zeros in components of the Implementation Class UID (seen in vendor UIDs);
* a missing User Information item, missing results for proposed contexts, unknown item types
  (skipped) and a transfer syntax sub-item that is empty or absent for a rejected context.

Everything else is strict: PDU type, bounded PDU length, protocol version bit 0, exactly one
Application Context item carrying the DICOM application context name 1.2.840.10008.3.1.1.1,
every presentation context result refers to a proposed context id (at most once) and, when
accepted, names one of the transfer syntaxes proposed for it, item lengths consistent with the
PDU length, UIDs syntactically valid, AE titles printable.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from dicomguard.errors import ProtocolError

# PDU types, PS3.8 Table 9-11 and following.
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

PDU_NAMES = {
    A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    P_DATA_TF: "P-DATA-TF",
    A_RELEASE_RQ: "A-RELEASE-RQ",
    A_RELEASE_RP: "A-RELEASE-RP",
    A_ABORT: "A-ABORT",
}

# Item types, PS3.8 9.3.2 / 9.3.3 and PS3.7 Annex D.3.3.
ITEM_APPLICATION_CONTEXT = 0x10
ITEM_PRESENTATION_CONTEXT_RQ = 0x20
ITEM_PRESENTATION_CONTEXT_AC = 0x21
ITEM_ABSTRACT_SYNTAX = 0x30
ITEM_TRANSFER_SYNTAX = 0x40
ITEM_USER_INFORMATION = 0x50
SUB_MAXIMUM_LENGTH = 0x51
SUB_IMPLEMENTATION_CLASS_UID = 0x52
SUB_ASYNC_OPERATIONS_WINDOW = 0x53
SUB_ROLE_SELECTION = 0x54
SUB_IMPLEMENTATION_VERSION_NAME = 0x55
SUB_SOP_CLASS_EXTENDED = 0x56
SUB_SOP_CLASS_COMMON_EXTENDED = 0x57
SUB_USER_IDENTITY_RQ = 0x58
SUB_USER_IDENTITY_AC = 0x59

#: The DICOM Application Context Name, PS3.7 Annex A.2.1.
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

#: The A-ASSOCIATE-AC/-RQ is bounded: no legitimate negotiation comes near this.
MAX_ASSOCIATE_PDU_LENGTH = 1 << 20
#: The fixed part of the A-ASSOCIATE-RQ/AC: version, reserved, two AE titles, 32 reserved.
_ASSOC_FIXED = 68

_HEADER = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

_UID_STRICT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\Z")
_UID_LENIENT = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")


def is_valid_uid(uid: str) -> bool:
    """True when ``uid`` is a valid UID string (PS3.5 9.1): digits and dots, at most 64 chars."""
    return 0 < len(uid) <= 64 and _UID_STRICT.match(uid) is not None


# -- dataclasses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PresentationContext:
    """A proposed presentation context (PS3.8 9.3.2.2): odd id 1-255, one abstract syntax."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class ContextResult:
    """The acceptor's answer for one context (PS3.8 9.3.3.2, Table 9-18).

    result: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
    3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported.
    """

    context_id: int
    abstract_syntax: str
    result: int
    transfer_syntax: str | None

    @property
    def accepted(self) -> bool:
        return self.result == 0


CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


@dataclass(frozen=True)
class RoleSelection:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4), roles of the association requestor."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(frozen=True)
class AssociateRequest:
    """A decoded A-ASSOCIATE-RQ (PS3.8 9.3.2); used by tests and loopback servers."""

    called_ae: str
    calling_ae: str
    application_context: str
    contexts: tuple[PresentationContext, ...]
    max_pdu_length: int
    implementation_class_uid: str
    implementation_version_name: str | None
    roles: tuple[RoleSelection, ...] = ()
    max_operations_invoked: int | None = None
    max_operations_performed: int | None = None


@dataclass(frozen=True)
class AssociateAccept:
    """A decoded and validated A-ASSOCIATE-AC (PS3.8 9.3.3, PS3.7 Annex D.3.3)."""

    called_ae: str
    calling_ae: str
    application_context: str
    contexts: tuple[ContextResult, ...]
    max_pdu_length: int  # 0 means no limit (PS3.8 D.1)
    implementation_class_uid: str
    implementation_version_name: str | None
    roles: tuple[RoleSelection, ...] = ()
    max_operations_invoked: int | None = None
    max_operations_performed: int | None = None
    extended_negotiation: tuple[tuple[str, bytes], ...] = ()
    user_identity_response: bytes | None = None
    protocol_version: int = 1
    deviations: tuple[str, ...] = field(default=())

    def accepted(self, abstract_syntax: str) -> ContextResult | None:
        """The first accepted context for ``abstract_syntax``, or None."""
        for ctx in self.contexts:
            if ctx.result == 0 and ctx.abstract_syntax == abstract_syntax:
                return ctx
        return None

    def context(self, context_id: int) -> ContextResult | None:
        for ctx in self.contexts:
            if ctx.context_id == context_id:
                return ctx
        return None


# PS3.8 Table 9-21: A-ASSOCIATE-RJ result, source and reason/diag.
_RJ_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
_RJ_SOURCES = {
    1: "service-user",
    2: "service-provider (ACSE related function)",
    3: "service-provider (presentation related function)",
}
_RJ_REASONS = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        7: "called-AE-title-not-recognized",
    },
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}


@dataclass(frozen=True)
class AssociateReject:
    """A decoded A-ASSOCIATE-RJ (PS3.8 9.3.4)."""

    result: int
    source: int
    reason: int

    @property
    def description(self) -> str:
        result = _RJ_RESULTS.get(self.result, f"result {self.result}")
        source = _RJ_SOURCES.get(self.source, f"source {self.source}")
        reason = _RJ_REASONS.get(self.source, {}).get(self.reason, f"reserved reason {self.reason}")
        return f"{result} by {source}: {reason}"


# PS3.8 Table 9-26: A-ABORT source and reason/diag.
_ABORT_SOURCES = {0: "service-user", 1: "reserved", 2: "service-provider"}
_ABORT_REASONS = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}


@dataclass(frozen=True)
class Abort:
    """A decoded A-ABORT (PS3.8 9.3.8)."""

    source: int
    reason: int

    @property
    def description(self) -> str:
        source = _ABORT_SOURCES.get(self.source, f"source {self.source}")
        if self.source == 2:
            return (
                f"A-ABORT by {source}: {_ABORT_REASONS.get(self.reason, f'reason {self.reason}')}"
            )
        return f"A-ABORT by {source}"


@dataclass(frozen=True)
class PDV:
    """One Presentation Data Value item of a P-DATA-TF (PS3.8 9.3.5, Annex E.2)."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


@dataclass(frozen=True)
class ReleaseRequest:
    """A-RELEASE-RQ (PS3.8 9.3.6)."""


@dataclass(frozen=True)
class ReleaseReply:
    """A-RELEASE-RP (PS3.8 9.3.7)."""


PDU = (
    AssociateRequest
    | AssociateAccept
    | AssociateReject
    | tuple[PDV, ...]
    | ReleaseRequest
    | ReleaseReply
    | Abort
)


# -- encoding ---------------------------------------------------------------------------------


def encode_ae_title(title: str) -> bytes:
    """An AE title as the 16-byte, space padded field of PS3.8 9.3.2 (PS3.5 AE VR).

    Raises ValueError for titles that are longer than 16 or not printable ASCII.
    """
    raw = title.encode("ascii", "strict") if title.isascii() else b"\x00"
    if len(raw) > 16 or any(b < 0x20 or b > 0x7E or b == 0x5C for b in raw):
        raise ValueError(f"invalid AE title {title!r}: at most 16 printable ASCII characters")
    return raw.ljust(16, b" ")


def _uid_bytes(uid: str) -> bytes:
    if not is_valid_uid(uid):
        raise ValueError(f"invalid UID {uid!r}")
    return uid.encode("ascii")


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("item value longer than 65535 bytes")
    return _ITEM.pack(item_type, 0, len(value)) + value


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return _HEADER.pack(pdu_type, 0, len(body)) + body


def _user_information(
    max_pdu_length: int,
    implementation_class_uid: str,
    implementation_version_name: str | None,
    roles: Sequence[RoleSelection],
    max_operations: tuple[int, int] | None,
    user_identity_response: bytes | None = None,
) -> bytes:
    sub = [
        _item(SUB_MAXIMUM_LENGTH, _U32.pack(max_pdu_length)),
        _item(SUB_IMPLEMENTATION_CLASS_UID, _uid_bytes(implementation_class_uid)),
    ]
    if max_operations is not None:
        sub.append(_item(SUB_ASYNC_OPERATIONS_WINDOW, struct.pack(">HH", *max_operations)))
    for role in roles:
        uid = _uid_bytes(role.sop_class_uid)
        sub.append(
            _item(
                SUB_ROLE_SELECTION,
                _U16.pack(len(uid)) + uid + bytes((int(role.scu_role), int(role.scp_role))),
            )
        )
    if implementation_version_name is not None:
        name = implementation_version_name.encode("ascii")
        if not 1 <= len(name) <= 16:
            raise ValueError("implementation version name must be 1 to 16 characters")
        sub.append(_item(SUB_IMPLEMENTATION_VERSION_NAME, name))
    if user_identity_response is not None:
        sub.append(
            _item(
                SUB_USER_IDENTITY_AC,
                _U16.pack(len(user_identity_response)) + user_identity_response,
            )
        )
    return _item(ITEM_USER_INFORMATION, b"".join(sub))


@lru_cache(maxsize=256)
def encode_associate_rq(
    called_ae: str,
    calling_ae: str,
    contexts: tuple[PresentationContext, ...],
    max_pdu_length: int,
    implementation_class_uid: str,
    implementation_version_name: str | None,
    roles: tuple[RoleSelection, ...] = (),
    max_operations: tuple[int, int] | None = None,
    application_context: str = DICOM_APPLICATION_CONTEXT,
) -> bytes:
    """Encode an A-ASSOCIATE-RQ (PS3.8 9.3.2). Cached: the probe repeats the same parameters."""
    if not contexts:
        raise ValueError("at least one presentation context is required")
    seen: set[int] = set()
    items = [_item(ITEM_APPLICATION_CONTEXT, _uid_bytes(application_context))]
    for ctx in contexts:
        if not (1 <= ctx.context_id <= 255 and ctx.context_id % 2 == 1):
            raise ValueError(f"presentation context id {ctx.context_id} must be odd, 1-255")
        if ctx.context_id in seen:
            raise ValueError(f"duplicate presentation context id {ctx.context_id}")
        if not ctx.transfer_syntaxes:
            raise ValueError(f"context {ctx.context_id} proposes no transfer syntax")
        seen.add(ctx.context_id)
        sub = [_item(ITEM_ABSTRACT_SYNTAX, _uid_bytes(ctx.abstract_syntax))]
        sub.extend(_item(ITEM_TRANSFER_SYNTAX, _uid_bytes(ts)) for ts in ctx.transfer_syntaxes)
        items.append(
            _item(ITEM_PRESENTATION_CONTEXT_RQ, bytes((ctx.context_id, 0, 0, 0)) + b"".join(sub))
        )
    items.append(
        _user_information(
            max_pdu_length,
            implementation_class_uid,
            implementation_version_name,
            roles,
            max_operations,
        )
    )
    body = (
        struct.pack(">HH", 1, 0)
        + encode_ae_title(called_ae)
        + encode_ae_title(calling_ae)
        + bytes(32)
        + b"".join(items)
    )
    return _pdu(A_ASSOCIATE_RQ, body)


def encode_associate_ac(accept: AssociateAccept) -> bytes:
    """Encode an A-ASSOCIATE-AC (PS3.8 9.3.3); used by loopback test servers and round trips."""
    items = [_item(ITEM_APPLICATION_CONTEXT, _uid_bytes(accept.application_context))]
    for ctx in accept.contexts:
        ts = b"" if ctx.transfer_syntax is None else _uid_bytes(ctx.transfer_syntax)
        items.append(
            _item(
                ITEM_PRESENTATION_CONTEXT_AC,
                bytes((ctx.context_id, 0, ctx.result, 0)) + _item(ITEM_TRANSFER_SYNTAX, ts),
            )
        )
    ops = None
    if accept.max_operations_invoked is not None:
        ops = (accept.max_operations_invoked, accept.max_operations_performed or 0)
    items.append(
        _user_information(
            accept.max_pdu_length,
            accept.implementation_class_uid,
            accept.implementation_version_name,
            accept.roles,
            ops,
            accept.user_identity_response,
        )
    )
    body = (
        struct.pack(">HH", accept.protocol_version, 0)
        + encode_ae_title(accept.called_ae)
        + encode_ae_title(accept.calling_ae)
        + bytes(32)
        + b"".join(items)
    )
    return _pdu(A_ASSOCIATE_AC, body)


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    """Encode an A-ASSOCIATE-RJ (PS3.8 9.3.4)."""
    return _pdu(A_ASSOCIATE_RJ, bytes((0, result, source, reason)))


RELEASE_RQ = _pdu(A_RELEASE_RQ, bytes(4))
RELEASE_RP = _pdu(A_RELEASE_RP, bytes(4))


def encode_abort(source: int = 0, reason: int = 0) -> bytes:
    """Encode an A-ABORT (PS3.8 9.3.8); source 0 service-user, 2 service-provider."""
    return _pdu(A_ABORT, bytes((0, 0, source, reason)))


def encode_p_data(pdvs: Sequence[tuple[int, int, bytes]]) -> bytes:
    """Encode a P-DATA-TF (PS3.8 9.3.5) from (context_id, control header, fragment) triples.

    Control header (PS3.8 Annex E.2): bit 0 set for a command, bit 1 set for the last fragment.
    """
    parts = []
    for context_id, control, data in pdvs:
        parts.append(_U32.pack(len(data) + 2))
        parts.append(bytes((context_id, control)))
        parts.append(data)
    return _pdu(P_DATA_TF, b"".join(parts))


# -- decoding ---------------------------------------------------------------------------------


def decode_header(header: bytes | memoryview) -> tuple[int, int]:
    """Split a 6-byte PDU header into (type, length); ProtocolError on unknown types."""
    if len(header) != 6:
        raise ProtocolError(f"PDU header must be 6 bytes, got {len(header)}")
    pdu_type, _reserved, length = _HEADER.unpack(header)
    if pdu_type not in PDU_NAMES:
        raise ProtocolError(f"unknown PDU type 0x{pdu_type:02x}")
    return pdu_type, length


def check_length(pdu_type: int, length: int, max_p_data: int) -> None:
    """Reject PDU lengths no valid peer sends (bounded before the body is read)."""
    if pdu_type in (A_ASSOCIATE_RJ, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT):
        if length != 4:
            raise ProtocolError(f"{PDU_NAMES[pdu_type]} length must be 4, got {length}")
    elif pdu_type in (A_ASSOCIATE_AC, A_ASSOCIATE_RQ):
        if not _ASSOC_FIXED + 4 <= length <= MAX_ASSOCIATE_PDU_LENGTH:
            raise ProtocolError(f"{PDU_NAMES[pdu_type]} length {length} out of bounds")
    elif pdu_type == P_DATA_TF and not 6 <= length <= max_p_data:
        raise ProtocolError(f"P-DATA-TF length {length} out of bounds (limit {max_p_data})")


def _ae(raw: bytes | memoryview, what: str) -> str:
    data = bytes(raw)
    stripped = data.rstrip(b" \x00")
    if any(b < 0x20 or b > 0x7E for b in stripped):
        raise ProtocolError(f"{what} AE title is not printable: {data!r}")
    return stripped.decode("ascii").strip()


def _uid(raw: bytes | memoryview, what: str, deviations: list[str] | None = None) -> str:
    data = bytes(raw)
    stripped = data.rstrip(b"\x00 ")
    try:
        uid = stripped.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not a UID: {data[:80]!r}") from None
    if is_valid_uid(uid):
        return uid
    if deviations is not None and 0 < len(uid) <= 64 and _UID_LENIENT.match(uid):
        deviations.append(f"{what} has leading zeros in a component: {uid}")
        return uid
    raise ProtocolError(f"{what} is not a valid UID: {data[:80]!r}")


def _items(body: memoryview, start: int, what: str) -> list[tuple[int, memoryview]]:
    """Split a run of items (type, reserved, 2-byte length, value) covering body[start:]."""
    out: list[tuple[int, memoryview]] = []
    pos, end = start, len(body)
    while pos < end:
        if end - pos < 4:
            raise ProtocolError(f"truncated item header in {what} at offset {pos}")
        item_type, _reserved, length = _ITEM.unpack_from(body, pos)
        pos += 4
        if pos + length > end:
            raise ProtocolError(
                f"item 0x{item_type:02x} in {what} has length {length} beyond the enclosing length"
            )
        out.append((item_type, body[pos : pos + length]))
        pos += length
    return out


def _decode_user_information(value: memoryview, deviations: list[str]) -> dict[str, object]:
    info: dict[str, object] = {}
    roles: list[RoleSelection] = []
    extended: list[tuple[str, bytes]] = []
    for sub_type, sub in _items(value, 0, "user information"):
        if sub_type == SUB_MAXIMUM_LENGTH:
            if len(sub) != 4:
                raise ProtocolError(f"maximum length sub-item has length {len(sub)}, not 4")
            info["max_pdu_length"] = _U32.unpack(sub)[0]
        elif sub_type == SUB_IMPLEMENTATION_CLASS_UID:
            info["implementation_class_uid"] = _uid(sub, "implementation class UID", deviations)
        elif sub_type == SUB_IMPLEMENTATION_VERSION_NAME:
            if not 1 <= len(sub) <= 16:
                raise ProtocolError(f"implementation version name has length {len(sub)}")
            info["implementation_version_name"] = _ae(sub, "implementation version name")
        elif sub_type == SUB_ASYNC_OPERATIONS_WINDOW:
            if len(sub) != 4:
                raise ProtocolError("asynchronous operations window sub-item length is not 4")
            info["max_operations_invoked"], info["max_operations_performed"] = struct.unpack(
                ">HH", sub
            )
        elif sub_type in (
            SUB_ROLE_SELECTION,
            SUB_SOP_CLASS_EXTENDED,
            SUB_SOP_CLASS_COMMON_EXTENDED,
        ):
            if len(sub) < 2:
                raise ProtocolError(f"sub-item 0x{sub_type:02x} too short")
            uid_len = _U16.unpack_from(sub, 0)[0]
            if 2 + uid_len > len(sub):
                raise ProtocolError(f"sub-item 0x{sub_type:02x} UID length beyond the item")
            uid = _uid(sub[2 : 2 + uid_len], "SOP class UID")
            rest = bytes(sub[2 + uid_len :])
            if sub_type == SUB_ROLE_SELECTION:
                if len(rest) != 2 or rest[0] > 1 or rest[1] > 1:
                    raise ProtocolError(f"role selection sub-item for {uid} is malformed")
                roles.append(RoleSelection(uid, bool(rest[0]), bool(rest[1])))
            elif sub_type == SUB_SOP_CLASS_EXTENDED:
                extended.append((uid, rest))
            else:
                deviations.append("SOP class common extended negotiation sub-item (RQ only)")
        elif sub_type in (SUB_USER_IDENTITY_AC, SUB_USER_IDENTITY_RQ):
            if sub_type == SUB_USER_IDENTITY_RQ:
                deviations.append("user identity RQ sub-item")
                continue
            if len(sub) < 2 or _U16.unpack_from(sub, 0)[0] != len(sub) - 2:
                raise ProtocolError("user identity sub-item length mismatch")
            info["user_identity_response"] = bytes(sub[2:])
        else:
            deviations.append(f"unknown user information sub-item 0x{sub_type:02x} skipped")
    info["roles"] = tuple(roles)
    info["extended_negotiation"] = tuple(extended)
    return info


def decode_associate_ac(
    body: bytes | memoryview, proposed: Sequence[PresentationContext] | None = None
) -> AssociateAccept:
    """Decode and validate the body (after the 6-byte header) of an A-ASSOCIATE-AC.

    With ``proposed``, every context result must refer to a proposed id and an accepted
    transfer syntax must be one proposed for that context (PS3.8 9.3.3.2).
    """
    mv = memoryview(body)
    if len(mv) < _ASSOC_FIXED:
        raise ProtocolError(f"A-ASSOCIATE-AC too short ({len(mv)} bytes)")
    version = _U16.unpack_from(mv, 0)[0]
    if not version & 1:
        raise ProtocolError(f"A-ASSOCIATE-AC protocol version 0x{version:04x} lacks bit 0")
    deviations: list[str] = []
    called = _ae(mv[4:20], "called")
    calling = _ae(mv[20:36], "calling")
    by_id = {ctx.context_id: ctx for ctx in proposed} if proposed is not None else None
    app_context: str | None = None
    results: dict[int, ContextResult] = {}
    user: dict[str, object] | None = None
    for item_type, value in _items(mv, _ASSOC_FIXED, "A-ASSOCIATE-AC"):
        if item_type == ITEM_APPLICATION_CONTEXT:
            if app_context is not None:
                raise ProtocolError("more than one application context item")
            app_context = _uid(value, "application context name")
            if app_context != DICOM_APPLICATION_CONTEXT:
                raise ProtocolError(f"application context {app_context} is not DICOM's")
        elif item_type == ITEM_PRESENTATION_CONTEXT_AC:
            results_item = _decode_context_ac(value, by_id, deviations)
            if results_item.context_id in results:
                raise ProtocolError(f"context id {results_item.context_id} answered twice")
            results[results_item.context_id] = results_item
        elif item_type == ITEM_USER_INFORMATION:
            if user is not None:
                raise ProtocolError("more than one user information item")
            user = _decode_user_information(value, deviations)
        else:
            deviations.append(f"unknown item type 0x{item_type:02x} skipped")
    if app_context is None:
        raise ProtocolError("A-ASSOCIATE-AC has no application context item")
    if user is None:
        deviations.append("no user information item")
        user = {}
    if "max_pdu_length" not in user and "no user information item" not in deviations:
        deviations.append("no maximum length sub-item")
    if "implementation_class_uid" not in user and "no user information item" not in deviations:
        deviations.append("no implementation class UID sub-item")
    if by_id is not None and len(results) != len(by_id):
        deviations.append(f"{len(by_id) - len(results)} proposed context(s) not answered")
    max_pdu = int(user.get("max_pdu_length", 0))  # type: ignore[call-overload]
    if 0 < max_pdu < 8:
        raise ProtocolError(f"maximum PDU length {max_pdu} is too small to carry a PDV")
    return AssociateAccept(
        called_ae=called,
        calling_ae=calling,
        application_context=app_context,
        contexts=tuple(results[k] for k in sorted(results)),
        max_pdu_length=max_pdu,
        implementation_class_uid=str(user.get("implementation_class_uid", "")),
        implementation_version_name=user.get("implementation_version_name"),  # type: ignore[arg-type]
        roles=user.get("roles", ()),  # type: ignore[arg-type]
        max_operations_invoked=user.get("max_operations_invoked"),  # type: ignore[arg-type]
        max_operations_performed=user.get("max_operations_performed"),  # type: ignore[arg-type]
        extended_negotiation=user.get("extended_negotiation", ()),  # type: ignore[arg-type]
        user_identity_response=user.get("user_identity_response"),  # type: ignore[arg-type]
        protocol_version=version,
        deviations=tuple(deviations),
    )


def _decode_context_ac(
    value: memoryview,
    by_id: dict[int, PresentationContext] | None,
    deviations: list[str],
) -> ContextResult:
    if len(value) < 4:
        raise ProtocolError("presentation context AC item shorter than 4 bytes")
    context_id, result = value[0], value[2]
    if result > 4:
        raise ProtocolError(f"presentation context {context_id} has result {result}")
    abstract = ""
    if by_id is not None:
        proposed = by_id.get(context_id)
        if proposed is None:
            raise ProtocolError(f"result for presentation context id {context_id} never proposed")
        abstract = proposed.abstract_syntax
    sub_items = _items(value, 4, f"presentation context {context_id}")
    ts: str | None = None
    ts_items = [sub for kind, sub in sub_items if kind == ITEM_TRANSFER_SYNTAX]
    if len(ts_items) != len(sub_items):
        raise ProtocolError(f"presentation context {context_id} has a non transfer syntax sub-item")
    if result == 0:
        if len(ts_items) != 1:
            raise ProtocolError(f"accepted context {context_id} needs one transfer syntax")
        ts = _uid(ts_items[0], f"transfer syntax of context {context_id}")
        if by_id is not None and ts not in by_id[context_id].transfer_syntaxes:
            raise ProtocolError(
                f"context {context_id} accepted with unproposed transfer syntax {ts}"
            )
    elif len(ts_items) > 1:
        raise ProtocolError(f"rejected context {context_id} has several transfer syntaxes")
    # else PS3.8 9.3.3.2: the transfer syntax of a rejected context "shall not be tested"
    return ContextResult(context_id, abstract, result, ts)


def decode_associate_rq(body: bytes | memoryview) -> AssociateRequest:
    """Decode an A-ASSOCIATE-RQ body (PS3.8 9.3.2); for loopback servers and tests."""
    mv = memoryview(body)
    if len(mv) < _ASSOC_FIXED:
        raise ProtocolError("A-ASSOCIATE-RQ too short")
    version = _U16.unpack_from(mv, 0)[0]
    if not version & 1:
        raise ProtocolError("A-ASSOCIATE-RQ protocol version lacks bit 0")
    called = _ae(mv[4:20], "called")
    calling = _ae(mv[20:36], "calling")
    deviations: list[str] = []
    app_context = None
    contexts: list[PresentationContext] = []
    user: dict[str, object] = {}
    for item_type, value in _items(mv, _ASSOC_FIXED, "A-ASSOCIATE-RQ"):
        if item_type == ITEM_APPLICATION_CONTEXT:
            app_context = _uid(value, "application context name")
        elif item_type == ITEM_PRESENTATION_CONTEXT_RQ:
            if len(value) < 4:
                raise ProtocolError("presentation context RQ item too short")
            abstract = None
            ts: list[str] = []
            for kind, sub in _items(value, 4, "presentation context"):
                if kind == ITEM_ABSTRACT_SYNTAX and abstract is None:
                    abstract = _uid(sub, "abstract syntax")
                elif kind == ITEM_TRANSFER_SYNTAX:
                    ts.append(_uid(sub, "transfer syntax"))
                else:
                    raise ProtocolError("unexpected sub-item in presentation context RQ")
            if abstract is None or not ts:
                raise ProtocolError("presentation context RQ lacks abstract or transfer syntax")
            contexts.append(PresentationContext(value[0], abstract, tuple(ts)))
        elif item_type == ITEM_USER_INFORMATION:
            user = _decode_user_information(value, deviations)
    if app_context is None:
        raise ProtocolError("A-ASSOCIATE-RQ has no application context item")
    return AssociateRequest(
        called_ae=called,
        calling_ae=calling,
        application_context=app_context,
        contexts=tuple(contexts),
        max_pdu_length=int(user.get("max_pdu_length", 0)),  # type: ignore[call-overload]
        implementation_class_uid=str(user.get("implementation_class_uid", "")),
        implementation_version_name=user.get("implementation_version_name"),  # type: ignore[arg-type]
        roles=user.get("roles", ()),  # type: ignore[arg-type]
        max_operations_invoked=user.get("max_operations_invoked"),  # type: ignore[arg-type]
        max_operations_performed=user.get("max_operations_performed"),  # type: ignore[arg-type]
    )


def decode_associate_rj(body: bytes | memoryview) -> AssociateReject:
    """Decode an A-ASSOCIATE-RJ body (PS3.8 9.3.4, Table 9-21); result 1-2, source 1-3."""
    if len(body) != 4:
        raise ProtocolError("A-ASSOCIATE-RJ body must be 4 bytes")
    _reserved, result, source, reason = bytes(body)
    if result not in _RJ_RESULTS:
        raise ProtocolError(f"A-ASSOCIATE-RJ result {result} is not 1 or 2")
    if source not in _RJ_SOURCES:
        raise ProtocolError(f"A-ASSOCIATE-RJ source {source} is not 1, 2 or 3")
    return AssociateReject(result, source, reason)


def decode_abort(body: bytes | memoryview) -> Abort:
    """Decode an A-ABORT body (PS3.8 9.3.8, Table 9-26)."""
    if len(body) != 4:
        raise ProtocolError("A-ABORT body must be 4 bytes")
    if body[2] > 2:
        raise ProtocolError(f"A-ABORT source {body[2]} is not 0, 1 or 2")
    return Abort(body[2], body[3])


def decode_p_data(body: bytes | memoryview) -> tuple[PDV, ...]:
    """Split a P-DATA-TF body into PDVs (PS3.8 9.3.5, Annex E.2); at least one, each >= 2 bytes."""
    mv = memoryview(body)
    pdvs: list[PDV] = []
    pos, end = 0, len(mv)
    if end == 0:
        raise ProtocolError("P-DATA-TF without PDV items")
    while pos < end:
        if end - pos < 6:
            raise ProtocolError("truncated PDV item header")
        length = _U32.unpack_from(mv, pos)[0]
        if length < 2 or pos + 4 + length > end:
            raise ProtocolError(f"PDV item length {length} inconsistent with the PDU length")
        context_id, control = mv[pos + 4], mv[pos + 5]
        if control & 0xFC:
            raise ProtocolError(f"PDV message control header 0x{control:02x} has reserved bits set")
        if not context_id & 1:
            raise ProtocolError(f"PDV presentation context id {context_id} is not odd")
        pdvs.append(
            PDV(
                context_id,
                bool(control & 1),
                bool(control & 2),
                bytes(mv[pos + 6 : pos + 4 + length]),
            )
        )
        pos += 4 + length
    return tuple(pdvs)


def decode_release(pdu_type: int, body: bytes | memoryview) -> ReleaseRequest | ReleaseReply:
    """Decode an A-RELEASE-RQ/RP body (PS3.8 9.3.6/9.3.7): 4 reserved bytes."""
    if len(body) != 4:
        raise ProtocolError("A-RELEASE PDU body must be 4 bytes")
    return ReleaseRequest() if pdu_type == A_RELEASE_RQ else ReleaseReply()


def decode_pdu(
    data: bytes | memoryview,
    *,
    proposed: Sequence[PresentationContext] | None = None,
    max_p_data: int = 1 << 24,
) -> PDU:
    """Decode one complete PDU (header included); ProtocolError for anything malformed."""
    mv = memoryview(data)
    if len(mv) < 6:
        raise ProtocolError("fewer than 6 bytes: not a PDU")
    pdu_type, length = decode_header(mv[:6])
    check_length(pdu_type, length, max_p_data)
    if len(mv) != 6 + length:
        raise ProtocolError(f"PDU length field {length} does not match {len(mv) - 6} body bytes")
    return decode_body(pdu_type, mv[6:], proposed=proposed)


def decode_body(
    pdu_type: int,
    body: bytes | memoryview,
    *,
    proposed: Sequence[PresentationContext] | None = None,
) -> PDU:
    """Decode a PDU body of a known type (the header was checked by decode_header)."""
    if pdu_type == A_ASSOCIATE_AC:
        return decode_associate_ac(body, proposed)
    if pdu_type == A_ASSOCIATE_RJ:
        return decode_associate_rj(body)
    if pdu_type == P_DATA_TF:
        return decode_p_data(body)
    if pdu_type == A_ABORT:
        return decode_abort(body)
    if pdu_type in (A_RELEASE_RQ, A_RELEASE_RP):
        return decode_release(pdu_type, body)
    if pdu_type == A_ASSOCIATE_RQ:
        return decode_associate_rq(body)
    raise ProtocolError(f"unknown PDU type 0x{pdu_type:02x}")
