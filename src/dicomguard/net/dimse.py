"""DIMSE messages: command sets, fragmentation into PDVs and reassembly.

* Command sets (PS3.7 section 6.3 and section 9.3/E): group 0000 elements, always encoded in
  Implicit VR Little Endian, in ascending tag order, starting with CommandGroupLength (0000,0000).
* Message fragmentation (PS3.7 section 8.1 and PS3.8 Annex E.2): a message is a command set,
  optionally followed by a data set, each carried in one or more PDV fragments; the message
  control header says "command" (bit 0) and "last fragment" (bit 1).
* Data sets (identifiers of C-FIND/C-MOVE/C-GET, the C-STORE instance) are encoded in the
  transfer syntax accepted for the presentation context, with pydicom.

Decoding is strict and only ever raises :class:`~dicomguard.errors.ProtocolError` on bad input.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from dicomguard.errors import ProtocolError
from dicomguard.net.pdu import P_DATA_TF, PDV

# Command Field values, PS3.7 Annex E.1.
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF

COMMAND_NAMES = {
    C_STORE_RQ: "C-STORE-RQ",
    C_STORE_RSP: "C-STORE-RSP",
    C_GET_RQ: "C-GET-RQ",
    C_GET_RSP: "C-GET-RSP",
    C_FIND_RQ: "C-FIND-RQ",
    C_FIND_RSP: "C-FIND-RSP",
    C_MOVE_RQ: "C-MOVE-RQ",
    C_MOVE_RSP: "C-MOVE-RSP",
    C_ECHO_RQ: "C-ECHO-RQ",
    C_ECHO_RSP: "C-ECHO-RSP",
    C_CANCEL_RQ: "C-CANCEL-RQ",
}

# Command element numbers (group 0000), PS3.7 Annex E, and their VRs.
CommandGroupLength = 0x0000
AffectedSOPClassUID = 0x0002
RequestedSOPClassUID = 0x0003
CommandField = 0x0100
MessageID = 0x0110
MessageIDBeingRespondedTo = 0x0120
MoveDestination = 0x0600
Priority = 0x0700
CommandDataSetType = 0x0800
Status = 0x0900
OffendingElement = 0x0901
ErrorComment = 0x0902
ErrorID = 0x0903
AffectedSOPInstanceUID = 0x1000
RequestedSOPInstanceUID = 0x1001
NumberOfRemainingSuboperations = 0x1020
NumberOfCompletedSuboperations = 0x1021
NumberOfFailedSuboperations = 0x1022
NumberOfWarningSuboperations = 0x1023
MoveOriginatorApplicationEntityTitle = 0x1030
MoveOriginatorMessageID = 0x1031

_VR = {
    CommandGroupLength: "UL",
    AffectedSOPClassUID: "UI",
    RequestedSOPClassUID: "UI",
    CommandField: "US",
    MessageID: "US",
    MessageIDBeingRespondedTo: "US",
    MoveDestination: "AE",
    Priority: "US",
    CommandDataSetType: "US",
    Status: "US",
    OffendingElement: "AT",
    ErrorComment: "LO",
    ErrorID: "US",
    AffectedSOPInstanceUID: "UI",
    RequestedSOPInstanceUID: "UI",
    0x1002: "US",  # EventTypeID
    0x1005: "AT",  # AttributeIdentifierList
    0x1008: "US",  # ActionTypeID
    NumberOfRemainingSuboperations: "US",
    NumberOfCompletedSuboperations: "US",
    NumberOfFailedSuboperations: "US",
    NumberOfWarningSuboperations: "US",
    MoveOriginatorApplicationEntityTitle: "AE",
    MoveOriginatorMessageID: "US",
}

#: CommandDataSetType value meaning "no data set" (PS3.7 E.1); any other value means one follows.
NO_DATA_SET = 0x0101

#: Priority MEDIUM (PS3.7 E.1).
PRIORITY_MEDIUM = 0x0000

#: Limits on what a peer may send us: a command set is small, a data set bounded.
MAX_COMMAND_BYTES = 1 << 16
DEFAULT_MAX_DATASET_BYTES = 1 << 26

CommandValue = int | str | bytes
Command = dict[int, CommandValue]

_TAG_LEN = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")


# -- status ------------------------------------------------------------------------------------


def is_pending(status: int) -> bool:
    """Pending statuses 0xFF00/0xFF01 (PS3.4 C.4, PS3.7 C)."""
    return status in (0xFF00, 0xFF01)


def status_category(status: int) -> str:
    """Success, Pending, Cancel, Warning or Failure per PS3.7 Annex C."""
    if status == 0x0000:
        return "Success"
    if is_pending(status):
        return "Pending"
    if status == 0xFE00:
        return "Cancel"
    if status == 0x0001 or (status & 0xF000) == 0xB000 or status == 0x0107 or status == 0x0116:
        return "Warning"
    return "Failure"


# -- command sets ------------------------------------------------------------------------------


def _encode_value(element: int, value: CommandValue) -> bytes:
    vr = _VR.get(element)
    if isinstance(value, bytes):
        raw = value
    elif vr == "US":
        raw = _US.pack(int(value))
    elif vr == "UL":
        raw = _UL.pack(int(value))
    elif vr in ("UI", "AE", "LO"):
        raw = str(value).encode("ascii")
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
    else:
        raise ValueError(f"cannot encode command element (0000,{element:04X}) from {value!r}")
    return raw


def encode_command(fields: Mapping[int, CommandValue]) -> bytes:
    """Encode a command set in Implicit VR Little Endian, with its group length (PS3.7 6.3.1)."""
    parts = []
    for element in sorted(fields):
        if element == CommandGroupLength:
            continue
        raw = _encode_value(element, fields[element])
        parts.append(_TAG_LEN.pack(0, element, len(raw)))
        parts.append(raw)
    body = b"".join(parts)
    return _TAG_LEN.pack(0, CommandGroupLength, 4) + _UL.pack(len(body)) + body


def decode_command(data: bytes | memoryview) -> Command:
    """Decode a command set (PS3.7 6.3.1); ProtocolError for anything not a valid group 0000.

    Elements must be group 0000, in strictly ascending order, within bounds; when present,
    CommandGroupLength must equal the number of bytes that follow it. CommandField must be present.
    """
    mv = memoryview(data)
    end = len(mv)
    if end > MAX_COMMAND_BYTES:
        raise ProtocolError(f"command set of {end} bytes exceeds {MAX_COMMAND_BYTES}")
    out: Command = {}
    pos = 0
    last = -1
    while pos < end:
        if end - pos < 8:
            raise ProtocolError("truncated command element header")
        group, element, length = _TAG_LEN.unpack_from(mv, pos)
        pos += 8
        if group != 0:
            raise ProtocolError(
                f"command set element ({group:04X},{element:04X}) not in group 0000"
            )
        if element <= last:
            raise ProtocolError(f"command element (0000,{element:04X}) out of order")
        if length > end - pos:
            raise ProtocolError(f"command element (0000,{element:04X}) length {length} too long")
        last = element
        raw = mv[pos : pos + length]
        pos += length
        vr = _VR.get(element)
        if vr == "US":
            if length != 2:
                raise ProtocolError(f"US command element (0000,{element:04X}) has length {length}")
            out[element] = _US.unpack(raw)[0]
        elif vr == "UL":
            if length != 4:
                raise ProtocolError(f"UL command element (0000,{element:04X}) has length {length}")
            value = _UL.unpack(raw)[0]
            if element == CommandGroupLength and value != end - pos:
                raise ProtocolError(f"CommandGroupLength {value} but {end - pos} bytes follow")
            out[element] = value
        elif vr in ("UI", "AE", "LO"):
            try:
                text = bytes(raw).decode("ascii")
            except UnicodeDecodeError:
                raise ProtocolError(f"command element (0000,{element:04X}) is not ASCII") from None
            out[element] = text.rstrip("\x00 ").lstrip(" ") if vr != "UI" else text.rstrip("\x00 ")
        else:
            out[element] = bytes(raw)
    if CommandField not in out:
        raise ProtocolError("command set without CommandField (0000,0100)")
    return out


def command_name(command: Command) -> str:
    field = command.get(CommandField)
    return COMMAND_NAMES.get(field, f"command 0x{field:04x}") if isinstance(field, int) else "?"


# -- fragmentation -----------------------------------------------------------------------------

_PDV_HEAD = struct.Struct(">BBIIBB")  # PDU type, reserved, PDU length, PDV length, ctx id, ctrl


def fragment(context_id: int, command: bytes, dataset: bytes | None, max_pdu_length: int) -> bytes:
    """Encode a DIMSE message as P-DATA-TF PDUs (PS3.8 Annex E.2), one PDV per PDU.

    ``max_pdu_length`` is the peer's maximum (0: no limit); each PDU's length field (the PDV
    item of 4 + 2 + fragment bytes) stays within it. Returns the PDUs concatenated.
    """
    limit = max_pdu_length - 6 if max_pdu_length else 1 << 24
    if limit < 1:
        raise ValueError(f"maximum PDU length {max_pdu_length} cannot carry a PDV")
    out: list[bytes] = []
    for payload, kind in ((command, 1), (dataset, 0)):
        if payload is None:
            continue
        mv = memoryview(payload)
        n = len(mv)
        pos = 0
        while True:
            chunk = mv[pos : pos + limit]
            pos += len(chunk)
            last = pos >= n
            out.append(
                _PDV_HEAD.pack(
                    P_DATA_TF,
                    0,
                    len(chunk) + 6,
                    len(chunk) + 2,
                    context_id,
                    kind | (2 if last else 0),
                )
            )
            out.append(bytes(chunk))
            if last:
                break
    return b"".join(out)


@dataclass(frozen=True)
class DimseMessage:
    """A reassembled DIMSE message; ``dataset`` is None when none was sent or it was discarded."""

    context_id: int
    command: Command
    dataset: bytes | None
    dataset_length: int

    @property
    def command_field(self) -> int:
        return int(self.command[CommandField])

    def get_int(self, element: int, default: int | None = None) -> int | None:
        value = self.command.get(element, default)
        return value if isinstance(value, int) or value is None else default


class Reassembler:
    """Collects PDVs into DIMSE messages (PS3.7 8.1, PS3.8 Annex E.2).

    Rules enforced: command fragments come first and complete before any data fragment; all
    fragments of one message share one presentation context, which must be an accepted one;
    a data set follows exactly when CommandDataSetType is not 0x0101; sizes are bounded.
    Data set bytes of C-STORE-RQ messages are counted and dropped when ``discard_store_data``
    is set (C-GET: dicomguard never keeps retrieved images).
    """

    def __init__(
        self,
        accepted_ids: Iterable[int],
        *,
        max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
    ) -> None:
        self.accepted_ids = frozenset(accepted_ids)
        self.max_dataset_bytes = max_dataset_bytes
        self.discard_store_data = False
        self._reset()

    def _reset(self) -> None:
        self._context_id: int | None = None
        self._command_parts: list[bytes] = []
        self._command_len = 0
        self._command: Command | None = None
        self._data_parts: list[bytes] = []
        self._data_len = 0
        self._discard = False

    @property
    def idle(self) -> bool:
        """True between messages."""
        return self._context_id is None

    def add(self, pdv: PDV) -> DimseMessage | None:
        """Add one PDV; returns the message it completes, else None."""
        if pdv.context_id not in self.accepted_ids:
            raise ProtocolError(
                f"PDV on presentation context {pdv.context_id}, not an accepted one"
            )
        if self._context_id is None:
            self._context_id = pdv.context_id
        elif pdv.context_id != self._context_id:
            raise ProtocolError("PDV context id changed in the middle of a message")
        if pdv.is_command:
            if self._command is not None:
                raise ProtocolError("command fragment after the command set was complete")
            self._command_len += len(pdv.data)
            if self._command_len > MAX_COMMAND_BYTES:
                raise ProtocolError("command set too long")
            self._command_parts.append(pdv.data)
            if not pdv.is_last:
                return None
            command = decode_command(b"".join(self._command_parts))
            self._command_parts = []
            data_type = command.get(CommandDataSetType)
            if not isinstance(data_type, int):
                raise ProtocolError("command set without CommandDataSetType (0000,0800)")
            if data_type == NO_DATA_SET:
                message = DimseMessage(pdv.context_id, command, None, 0)
                self._reset()
                return message
            self._command = command
            self._discard = self.discard_store_data and command.get(CommandField) == C_STORE_RQ
            return None
        if self._command is None:
            raise ProtocolError("data set fragment before the command set was complete")
        self._data_len += len(pdv.data)
        if not self._discard:
            if self._data_len > self.max_dataset_bytes:
                raise ProtocolError(f"data set larger than {self.max_dataset_bytes} bytes")
            self._data_parts.append(pdv.data)
        if not pdv.is_last:
            return None
        message = DimseMessage(
            pdv.context_id,
            self._command,
            None if self._discard else b"".join(self._data_parts),
            self._data_len,
        )
        self._reset()
        return message


# -- data sets ---------------------------------------------------------------------------------

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: Uncompressed transfer syntaxes to propose for query/retrieve and verification contexts.
DEFAULT_TRANSFER_SYNTAXES = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


def _encoding(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a transfer syntax; encapsulated ones are explicit LE."""
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN:
        return False, False
    return False, True


def encode_dataset(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode a data set (no file meta, no preamble) in ``transfer_syntax`` (PS3.5 section 10)."""
    implicit, little = _encoding(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    data = fp.getvalue()
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        if len(data) % 2:
            data += b"\x00"
    return data


def decode_dataset(data: bytes, transfer_syntax: str) -> Dataset:
    """Decode a data set received from a peer; ProtocolError when pydicom cannot parse it.

    Every element is converted here (not lazily later), so errors surface at this boundary.
    pydicom's warnings about odd values the peer sent are suppressed: the peer is untrusted
    input and the caller gets either a data set or a ProtocolError.
    """
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        try:
            inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
            data = inflater.decompress(data, DEFAULT_MAX_DATASET_BYTES)
        except zlib.error as exc:
            raise ProtocolError(f"deflated data set does not inflate: {exc}") from None
    implicit, little = _encoding(transfer_syntax)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dataset(io.BytesIO(data), implicit, little)
            _walk(ds)
    except ProtocolError:
        raise
    except Exception as exc:  # pydicom raises many types on malformed input
        raise ProtocolError(f"malformed data set: {type(exc).__name__}: {exc}") from None
    return ds


def _walk(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item)
