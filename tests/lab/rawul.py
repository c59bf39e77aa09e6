"""A minimal DICOM Upper Layer client for the lab tests: one A-ASSOCIATE-RQ, the raw answer.

pynetdicom hides the bytes of a rejection and the peer's implementation identifiers behind its
state machine; the lab tests want them exactly (they are the fingerprints the scanner relies
on), so this builds the request by hand (PS3.8 9.3.2) and parses AC / RJ / anything else.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
PROBE_IMPLEMENTATION_UID = "2.25.1234567890123456789"
PROBE_VERSION_NAME = "DGUARD_TEST"


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)[:16]


def associate_rq(called: str, calling: str, abstract_syntaxes: tuple[str, ...]) -> bytes:
    items = _item(0x10, APPLICATION_CONTEXT.encode())
    for index, abstract in enumerate(abstract_syntaxes):
        sub = _item(0x30, abstract.encode())
        sub += _item(0x40, EXPLICIT_VR_LE.encode()) + _item(0x40, IMPLICIT_VR_LE.encode())
        items += _item(0x20, struct.pack(">BBBB", 1 + 2 * index, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", 16384))
    user += _item(0x52, PROBE_IMPLEMENTATION_UID.encode())
    user += _item(0x55, PROBE_VERSION_NAME.encode())
    items += _item(0x50, user)
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32) + items
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


@dataclass
class Answer:
    """What the peer answered: `kind` is "accept", "reject", "abort", "garbage", "closed"
    or "timeout"."""

    kind: str
    raw: bytes = b""
    result: int | None = None       # A-ASSOCIATE-RJ
    source: int | None = None
    reason: int | None = None
    implementation_class_uid: str | None = None      # A-ASSOCIATE-AC user information
    implementation_version_name: str | None = None
    accepted_contexts: dict[int, int] = field(default_factory=dict)  # id -> result (0=accept)
    closed_after: bool | None = None  # did the peer close the connection by itself afterwards


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _parse_ac(body: bytes, answer: Answer) -> None:
    offset = 68  # protocol version, reserved, called/calling echo, 32 reserved
    while offset + 4 <= len(body):
        item_type, _, length = struct.unpack(">BBH", body[offset:offset + 4])
        value = body[offset + 4:offset + 4 + length]
        if item_type == 0x21:
            answer.accepted_contexts[value[0]] = value[2]
        elif item_type == 0x50:
            sub = 0
            while sub + 4 <= len(value):
                sub_type, _, sub_length = struct.unpack(">BBH", value[sub:sub + 4])
                text = value[sub + 4:sub + 4 + sub_length].decode("ascii", "replace")
                if sub_type == 0x52:
                    answer.implementation_class_uid = text.rstrip("\0 ")
                elif sub_type == 0x55:
                    answer.implementation_version_name = text.rstrip("\0 ")
                sub += 4 + sub_length
        offset += 4 + length


def associate(
    address: str,
    port: int,
    *,
    called: str,
    calling: str = "DGUARDPROBE",
    abstract_syntaxes: tuple[str, ...] = (VERIFICATION,),
    timeout: float = 3.0,
    linger: float = 0.0,
) -> Answer:
    """Send one A-ASSOCIATE-RQ; return the parsed answer. Releases nothing: the connection is
    closed by us (after `linger` seconds spent watching whether the peer closes first)."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(associate_rq(called, calling, abstract_syntaxes))
        try:
            header = _recv_exact(sock, 6)
        except TimeoutError:
            return Answer("timeout")
        if len(header) < 6:
            return Answer("closed", raw=header)
        pdu_type, _, length = struct.unpack(">BBI", header)
        if pdu_type not in (0x02, 0x03, 0x07) or length > 1 << 20:
            try:
                rest = sock.recv(4096)
            except TimeoutError:
                rest = b""
            return Answer("garbage", raw=header + rest)
        try:
            body = _recv_exact(sock, length)
        except TimeoutError:
            return Answer("garbage", raw=header)
        if len(body) < length:
            return Answer("garbage", raw=header + body)
        raw = header + body
        if pdu_type == 0x03:
            answer = Answer("reject", raw=raw, result=body[1], source=body[2], reason=body[3])
        elif pdu_type == 0x07:
            answer = Answer("abort", raw=raw, source=body[2], reason=body[3])
        else:
            answer = Answer("accept", raw=raw)
            _parse_ac(body, answer)
        if linger > 0:
            sock.settimeout(linger)
            try:
                answer.closed_after = sock.recv(1) == b""
            except TimeoutError:
                answer.closed_after = False
        if answer.kind == "accept":
            # A-RELEASE-RQ, so servers that serve one association at a time move on.
            sock.sendall(struct.pack(">BBIi", 0x05, 0, 4, 0))
            try:
                sock.settimeout(2.0)
                sock.recv(64)
            except (TimeoutError, OSError):
                pass
        return answer
