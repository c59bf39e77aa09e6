"""Asynchronous DICOM Upper Layer client: association, DIMSE-C services, release and abort.

Implements the association requestor side of the DICOM Upper Layer protocol (PS3.8 section 7
and 9: A-ASSOCIATE, P-DATA, A-RELEASE, A-ABORT) and the DIMSE-C services C-ECHO, C-FIND,
C-STORE, C-MOVE and C-GET including C-CANCEL (PS3.7 section 9 and 9.3), over an
``(asyncio.StreamReader, asyncio.StreamWriter)`` pair opened by
:class:`dicomguard.net.connector.Connector`.

Guarantees a scanner needs:

* every read has an explicit timeout (``read_timeout``, for one whole PDU) and raises
  :class:`~dicomguard.errors.ReadTimeout` when it expires; long exchanges (C-FIND/C-MOVE/C-GET)
  are further bounded by record limits and a cancel deadline, so a peer can never hold us;
* a peer is called DICOM only when it answered a fully valid A-ASSOCIATE-AC or -RJ (see
  :mod:`dicomguard.net.pdu`); anything else raises :class:`~dicomguard.errors.ProtocolError`;
* A-ABORT or a closed connection inside an association raises
  :class:`~dicomguard.errors.DimseError`, malformed data ProtocolError; in both cases the
  association is aborted and the transport closed;
* C-GET sub-operation data is counted and dropped, never kept.

The connection is owned by the caller (the Connector closes it); :meth:`Association.release`
and :meth:`Association.abort` close it early as a courtesy to fragile devices.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType

from pydicom.dataset import Dataset

from dicomguard.errors import (
    AssociationRejected,
    DicomguardError,
    DimseError,
    PeerAborted,
    ProtocolError,
    ReadTimeout,
)
from dicomguard.net import dimse
from dicomguard.net.connector import close_writer
from dicomguard.net.dimse import DimseMessage, Reassembler
from dicomguard.net.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    MAX_ASSOCIATE_PDU_LENGTH,
    P_DATA_TF,
    PDU_NAMES,
    PDV,
    RELEASE_RP,
    RELEASE_RQ,
    AssociateAccept,
    ContextResult,
    PresentationContext,
    RoleSelection,
    check_length,
    decode_abort,
    decode_associate_ac,
    decode_associate_rj,
    decode_header,
    decode_p_data,
    encode_abort,
    encode_associate_rq,
)

__all__ = [
    "DEFAULT_MAX_PDU_LENGTH",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "VERIFICATION_SOP_CLASS",
    "AssociateAccept",
    "Association",
    "ContextResult",
    "EchoResult",
    "FindResult",
    "GetResult",
    "MoveResult",
    "PresentationContext",
    "associate",
    "echo_once",
]

#: dicomguard's Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID under 2.25.
IMPLEMENTATION_CLASS_UID = "2.25.246207499996480481240342390085430655805"
#: Implementation Version Name (PS3.7 D.3.3.2.2), at most 16 characters.
IMPLEMENTATION_VERSION_NAME = "DICOMGUARD_01"
#: Verification SOP Class (PS3.4 A.4).
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
#: Maximum length of the P-DATA-TF PDUs we accept (PS3.8 D.1), proposed to the peer.
DEFAULT_MAX_PDU_LENGTH = 65536
#: Extra bytes tolerated over our announced maximum before a P-DATA-TF is called malformed.
P_DATA_SLACK = 65536
#: Responses tolerated after a C-CANCEL before the association is aborted.
MAX_RESPONSES_AFTER_CANCEL = 10000

VERIFICATION_CONTEXT = PresentationContext(
    1, VERIFICATION_SOP_CLASS, dimse.DEFAULT_TRANSFER_SYNTAXES
)

_PROTOCOL = "dicom"


@dataclass(frozen=True)
class FindResult:
    """Outcome of a C-FIND (PS3.4 C.4.1). ``status`` is None when no final response came."""

    status: int | None
    matches: list[Dataset]
    truncated: bool  # C-CANCEL was sent because max_records was reached
    pending_responses: int = 0
    error_comment: str | None = None
    error: str | None = None  # why no final status was obtained (after a cancel)


@dataclass(frozen=True)
class SubOperations:
    """Sub-operation counts of a C-MOVE/C-GET response (PS3.4 C.4.2.1.4, C.4.3.1.4)."""

    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None


@dataclass(frozen=True)
class MoveResult:
    """Outcome of a C-MOVE (PS3.4 C.4.2); counts are those of the final (or last) response.

    ``status`` is None when no final response came (``error`` says why)."""

    status: int | None
    counts: SubOperations
    pending_responses: int = 0
    error_comment: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class GetResult:
    """Outcome of a C-GET (PS3.4 C.4.3). Instances were received and dropped, never kept."""

    status: int | None
    instances_received: int
    bytes_received: int
    cancelled: bool
    move: MoveResult  # final status, counts, pending responses, comment, error

    @property
    def counts(self) -> SubOperations:
        return self.move.counts


@dataclass(frozen=True)
class EchoResult:
    """What :func:`echo_once` learned: the accept, the C-ECHO status, a clean release or not."""

    accept: AssociateAccept
    status: int | None
    released: bool
    deviations: tuple[str, ...] = field(default=())


def _peer_of(writer: asyncio.StreamWriter, peer: tuple[str, int] | None) -> tuple[str, int]:
    if peer is not None:
        return peer
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return str(name[0]), int(name[1])
    return "", 0


def _hex_head(data: bytes) -> str:
    return data[:16].hex() + ("..." if len(data) > 16 else "")


async def _read_pdu(
    reader: asyncio.StreamReader,
    timeout: float,
    max_p_data: int,
    where: tuple[str, int],
    waiting_for: str,
) -> tuple[int, bytes]:
    """Read one whole PDU within ``timeout`` (PS3.8 9.3.1 header: type, reserved, length).

    Raises ReadTimeout, or ProtocolError for a bad header or a connection closed mid-PDU.
    Connection closure is reported as ProtocolError with ``closed`` in the message; the
    Association turns it into a DimseError.
    """
    header = b""
    try:
        async with asyncio.timeout(timeout):
            header = await reader.readexactly(6)
            pdu_type, length = decode_header(header)
            check_length(pdu_type, length, max_p_data)
            body = await reader.readexactly(length)
    except TimeoutError:
        raise ReadTimeout(
            where[0], where[1], _PROTOCOL, f"no complete PDU within {timeout:g} s ({waiting_for})"
        ) from None
    except asyncio.IncompleteReadError as exc:
        got = header + exc.partial if header else exc.partial
        raise _Closed(
            f"connection closed by peer after {len(got)} byte(s) while waiting for {waiting_for}"
            + (f" (received {_hex_head(got)})" if got else ""),
            address=where[0],
            port=where[1],
        ) from None
    except ProtocolError as exc:
        raise ProtocolError(
            f"not a DICOM PDU while waiting for {waiting_for}: {exc}"
            f" (received {_hex_head(header)})",
            address=where[0],
            port=where[1],
        ) from None
    except OSError as exc:
        raise _Closed(
            f"connection error while waiting for {waiting_for}: {exc}",
            address=where[0],
            port=where[1],
        ) from None
    return pdu_type, body


class _Closed(ProtocolError):
    """The connection ended (EOF, reset) before a complete PDU arrived."""


async def associate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    called_ae: str,
    calling_ae: str,
    contexts: Sequence[PresentationContext],
    read_timeout: float,
    max_pdu_length: int = DEFAULT_MAX_PDU_LENGTH,
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str = IMPLEMENTATION_VERSION_NAME,
    scp_scu_roles: Sequence[str] = (),
    peer: tuple[str, int] | None = None,
) -> Association:
    """Request an association (PS3.8 7.1) and return it once a valid A-ASSOCIATE-AC arrived.

    ``scp_scu_roles`` lists SOP classes for which we propose both the SCU and the SCP role
    (PS3.7 D.3.3.4): C-GET needs the SCP role for the storage classes it receives, and keeping
    SCU lets the same context carry our own C-STORE.

    Raises AssociationRejected (well-formed A-ASSOCIATE-RJ), ProtocolError (anything else that
    is not a valid A-ASSOCIATE-AC, A-ABORT, early close), ReadTimeout (no complete PDU within
    ``read_timeout``). ValueError for invalid arguments (bad AE title or UID), before any I/O.
    The connection is left open on failure; its owner closes it.
    """
    proposed = tuple(contexts)
    roles = tuple(RoleSelection(uid, True, True) for uid in scp_scu_roles)
    request = encode_associate_rq(
        called_ae,
        calling_ae,
        proposed,
        max_pdu_length,
        implementation_class_uid,
        implementation_version_name,
        roles,
    )
    where = _peer_of(writer, peer)
    writer.write(request)
    pdu_type, body = await _read_pdu(
        reader, read_timeout, MAX_ASSOCIATE_PDU_LENGTH, where, "A-ASSOCIATE-AC"
    )
    if pdu_type == A_ASSOCIATE_AC:
        try:
            accept = decode_associate_ac(body, proposed)
        except ProtocolError as exc:
            # Looked like DICOM but is not valid: tell the peer, as PS3.8 9.3.1 asks.
            writer.write(encode_abort(2, 6))
            raise ProtocolError(
                f"invalid A-ASSOCIATE-AC: {exc}", address=where[0], port=where[1]
            ) from None
        return Association(reader, writer, accept, proposed, read_timeout, max_pdu_length, where)
    if pdu_type == A_ASSOCIATE_RJ:
        reject = decode_associate_rj(body)
        raise AssociationRejected(reject.result, reject.source, reject.reason, reject.description)
    if pdu_type == A_ABORT:
        abort = decode_abort(body)
        raise ProtocolError(
            f"association negotiation aborted: {abort.description} "
            f"(source {abort.source}, reason {abort.reason})",
            address=where[0],
            port=where[1],
        )
    raise ProtocolError(
        f"unexpected {PDU_NAMES[pdu_type]} in reply to A-ASSOCIATE-RQ",
        address=where[0],
        port=where[1],
    )


@lru_cache(maxsize=512)
def encode_echo_rq(context_id: int, message_id: int, max_pdu_length: int) -> bytes:
    """The P-DATA-TF carrying a C-ECHO-RQ (PS3.7 9.3.5.1) on `context_id`."""
    command = dimse.encode_command(
        {
            dimse.AffectedSOPClassUID: VERIFICATION_SOP_CLASS,
            dimse.CommandField: dimse.C_ECHO_RQ,
            dimse.MessageID: message_id,
            dimse.CommandDataSetType: dimse.NO_DATA_SET,
        }
    )
    return dimse.fragment(context_id, command, None, max_pdu_length)


class Association:
    """An established association (PS3.8 7.1), requestor side; one DIMSE operation at a time.

    Use ``async with``: a clean exit releases, an exception aborts.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        accept: AssociateAccept,
        proposed: tuple[PresentationContext, ...],
        read_timeout: float,
        max_pdu_length: int,
        peer: tuple[str, int],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.accept = accept
        self.proposed = proposed
        self.read_timeout = read_timeout
        self.peer = peer
        self.closed = False
        self._max_p_data = max_pdu_length + P_DATA_SLACK if max_pdu_length else 1 << 26
        self._accepted = {c.context_id: c for c in accept.contexts if c.result == 0}
        self._reassembler = Reassembler(self._accepted)
        self._reassembler.discard_store_data = True  # dicomguard never keeps retrieved images
        self._pdvs: deque[PDV] = deque()
        self._message_id = 0

    # -- context helpers ---------------------------------------------------------------------

    def accepted(self, abstract_syntax: str) -> ContextResult | None:
        """The accepted presentation context for ``abstract_syntax``, or None."""
        return self.accept.accepted(abstract_syntax)

    def _require(self, abstract_syntax: str) -> ContextResult:
        if self.closed:
            raise DimseError("the association is closed")
        ctx = self.accept.accepted(abstract_syntax)
        if ctx is None:
            raise DimseError(f"no accepted presentation context for {abstract_syntax}")
        return ctx

    def _next_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    # -- I/O ---------------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() > 1 << 16:
            try:
                async with asyncio.timeout(self.read_timeout):
                    await self.writer.drain()
            except TimeoutError:
                raise ReadTimeout(
                    self.peer[0], self.peer[1], _PROTOCOL, "peer stopped reading (write stalled)"
                ) from None
            except OSError as exc:
                raise DimseError(f"connection lost while sending: {exc}") from None

    async def _send_message(
        self, context_id: int, command: dimse.Command, dataset: bytes | None = None
    ) -> None:
        data = dimse.fragment(
            context_id, dimse.encode_command(command), dataset, self.accept.max_pdu_length
        )
        await self._send(data)

    async def _recv_message(self) -> DimseMessage:
        """The next complete DIMSE message; handles A-ABORT, release requests and garbage."""
        while True:
            while self._pdvs:
                message = self._reassembler.add(self._pdvs.popleft())
                if message is not None:
                    return message
            try:
                pdu_type, body = await _read_pdu(
                    self.reader, self.read_timeout, self._max_p_data, self.peer, "a DIMSE message"
                )
            except _Closed as exc:
                raise DimseError(str(exc)) from None
            if pdu_type == P_DATA_TF:
                self._pdvs.extend(decode_p_data(body))
            elif pdu_type == A_ABORT:
                abort = decode_abort(body)
                self.closed = True
                raise PeerAborted(
                    f"peer aborted the association: {abort.description} "
                    f"(source {abort.source}, reason {abort.reason})",
                    abort.source,
                    abort.reason,
                )
            elif pdu_type == A_RELEASE_RQ:
                self.writer.write(RELEASE_RP)
                self.closed = True
                raise DimseError("peer released the association while a response was outstanding")
            else:
                raise ProtocolError(
                    f"unexpected {PDU_NAMES[pdu_type]} inside an association",
                    address=self.peer[0],
                    port=self.peer[1],
                )

    async def _response(self, context_id: int, message_id: int, expected: int) -> DimseMessage:
        message = await self._recv_message()
        field_ = message.command_field
        if field_ != expected:
            raise ProtocolError(
                f"expected {dimse.COMMAND_NAMES[expected]}, "
                f"got {dimse.command_name(message.command)}",
                address=self.peer[0],
                port=self.peer[1],
            )
        self._check_response(message, context_id, message_id)
        return message

    def _check_response(self, message: DimseMessage, context_id: int, message_id: int) -> None:
        if message.get_int(dimse.MessageIDBeingRespondedTo) != message_id:
            raise ProtocolError(
                f"{dimse.command_name(message.command)} answers message "
                f"{message.command.get(dimse.MessageIDBeingRespondedTo)!r}, not {message_id}",
                address=self.peer[0],
                port=self.peer[1],
            )
        if message.context_id != context_id:
            raise ProtocolError(
                f"response on presentation context {message.context_id}, request on {context_id}",
                address=self.peer[0],
                port=self.peer[1],
            )
        if message.get_int(dimse.Status) is None:
            raise ProtocolError(
                f"{dimse.command_name(message.command)} without Status",
                address=self.peer[0],
                port=self.peer[1],
            )

    async def _fail(self) -> None:
        """After a protocol violation or timeout: A-ABORT (best effort) and close."""
        if not self.closed:
            self.closed = True
            if not self.writer.is_closing():
                self.writer.write(encode_abort(2, 0))
        await close_writer(self.writer)

    # -- DIMSE-C services ----------------------------------------------------------------------

    async def c_echo(self) -> int:
        """C-ECHO (PS3.7 9.1.5, PS3.4 A.4); returns the DIMSE status (0x0000 success)."""
        ctx = self._require(VERIFICATION_SOP_CLASS)
        message_id = self._next_id()
        try:
            await self._send(encode_echo_rq(ctx.context_id, message_id, self.accept.max_pdu_length))
            rsp = await self._response(ctx.context_id, message_id, dimse.C_ECHO_RSP)
        except DicomguardError:
            await self._fail()
            raise
        return int(rsp.command[dimse.Status])

    async def c_store(
        self,
        dataset: Dataset | bytes,
        *,
        sop_class_uid: str,
        sop_instance_uid: str,
        priority: int = dimse.PRIORITY_MEDIUM,
    ) -> int:
        """C-STORE (PS3.7 9.1.1); ``dataset`` is a pydicom Dataset or bytes already encoded in
        the accepted transfer syntax. Returns the DIMSE status. Intrusive: callers opt in."""
        ctx = self._require(sop_class_uid)
        assert ctx.transfer_syntax is not None
        payload = (
            dataset
            if isinstance(dataset, bytes)
            else dimse.encode_dataset(dataset, ctx.transfer_syntax)
        )
        message_id = self._next_id()
        command: dimse.Command = {
            dimse.AffectedSOPClassUID: sop_class_uid,
            dimse.CommandField: dimse.C_STORE_RQ,
            dimse.MessageID: message_id,
            dimse.Priority: priority,
            dimse.CommandDataSetType: 0x0001,
            dimse.AffectedSOPInstanceUID: sop_instance_uid,
        }
        try:
            await self._send_message(ctx.context_id, command, payload)
            rsp = await self._response(ctx.context_id, message_id, dimse.C_STORE_RSP)
        except DicomguardError:
            await self._fail()
            raise
        return int(rsp.command[dimse.Status])

    def _request(
        self, field_: int, abstract_syntax: str, message_id: int, priority: int
    ) -> dimse.Command:
        return {
            dimse.AffectedSOPClassUID: abstract_syntax,
            dimse.CommandField: field_,
            dimse.MessageID: message_id,
            dimse.Priority: priority,
            dimse.CommandDataSetType: 0x0001,
        }

    async def _cancel(self, context_id: int, message_id: int) -> None:
        """C-CANCEL-RQ (PS3.7 9.3.2.3) for the operation ``message_id``."""
        await self._send_message(
            context_id,
            {
                dimse.CommandField: dimse.C_CANCEL_RQ,
                dimse.MessageIDBeingRespondedTo: message_id,
                dimse.CommandDataSetType: dimse.NO_DATA_SET,
            },
        )

    async def c_find(
        self,
        abstract_syntax: str,
        identifier: Dataset,
        *,
        max_records: int,
        priority: int = dimse.PRIORITY_MEDIUM,
    ) -> FindResult:
        """C-FIND (PS3.7 9.1.2, PS3.4 C.4.1): collect at most ``max_records`` matches.

        When ``max_records`` pending responses arrived, a C-CANCEL is sent and further
        identifiers are dropped; the peer then has ``read_timeout`` seconds and at most
        MAX_RESPONSES_AFTER_CANCEL responses to send its final response, else the association
        is aborted and the result carries status None with the reason in ``error``.
        """
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        ctx = self._require(abstract_syntax)
        assert ctx.transfer_syntax is not None
        payload = dimse.encode_dataset(identifier, ctx.transfer_syntax)
        message_id = self._next_id()
        matches: list[Dataset] = []
        pending = 0
        cancel = _CancelState(self.read_timeout)
        try:
            await self._send_message(
                ctx.context_id,
                self._request(dimse.C_FIND_RQ, abstract_syntax, message_id, priority),
                payload,
            )
            while True:
                try:
                    rsp = await self._response(ctx.context_id, message_id, dimse.C_FIND_RSP)
                except ReadTimeout as exc:
                    if not cancel.sent:
                        raise
                    await self._fail()
                    return FindResult(None, matches, True, pending, error=str(exc))
                status = int(rsp.command[dimse.Status])
                if not dimse.is_pending(status):
                    return FindResult(status, matches, cancel.sent, pending, _comment(rsp))
                pending += 1
                if cancel.sent:
                    if cancel.expired(pending):
                        await self._fail()
                        return FindResult(
                            None, matches, True, pending, error="no final response after C-CANCEL"
                        )
                    continue
                if rsp.dataset is not None:
                    matches.append(dimse.decode_dataset(rsp.dataset, ctx.transfer_syntax))
                if pending >= max_records:
                    await self._cancel(ctx.context_id, message_id)
                    cancel.start(pending)
        except DicomguardError:
            await self._fail()
            raise

    async def c_move(
        self,
        abstract_syntax: str,
        identifier: Dataset,
        move_destination: str,
        *,
        priority: int = dimse.PRIORITY_MEDIUM,
        max_pending: int = 100000,
    ) -> MoveResult:
        """C-MOVE (PS3.7 9.1.4, PS3.4 C.4.2) to ``move_destination``; intrusive, opt-in.

        More than ``max_pending`` pending responses trigger a C-CANCEL (bounding the exchange).
        """
        ctx = self._require(abstract_syntax)
        assert ctx.transfer_syntax is not None
        payload = dimse.encode_dataset(identifier, ctx.transfer_syntax)
        message_id = self._next_id()
        command = self._request(dimse.C_MOVE_RQ, abstract_syntax, message_id, priority)
        command[dimse.MoveDestination] = move_destination
        pending = 0
        cancel = _CancelState(self.read_timeout)
        last: DimseMessage | None = None
        try:
            await self._send_message(ctx.context_id, command, payload)
            while True:
                try:
                    rsp = await self._response(ctx.context_id, message_id, dimse.C_MOVE_RSP)
                except ReadTimeout as exc:
                    if not cancel.sent:
                        raise
                    await self._fail()
                    return _move_result(None, last, pending, str(exc))
                last = rsp
                status = int(rsp.command[dimse.Status])
                if not dimse.is_pending(status):
                    return _move_result(status, rsp, pending, None)
                pending += 1
                if cancel.sent and cancel.expired(pending):
                    await self._fail()
                    return _move_result(None, rsp, pending, "no final response after C-CANCEL")
                if not cancel.sent and pending >= max_pending:
                    await self._cancel(ctx.context_id, message_id)
                    cancel.start(pending)
        except DicomguardError:
            await self._fail()
            raise

    async def c_get(
        self,
        abstract_syntax: str,
        identifier: Dataset,
        *,
        max_instances: int = 1,
        priority: int = dimse.PRIORITY_MEDIUM,
    ) -> GetResult:
        """C-GET (PS3.7 9.1.3, PS3.4 C.4.3); intrusive, opt-in.

        Incoming C-STORE sub-operations (on contexts proposed with ``scp_scu_roles``) are
        answered with Success; their data is counted and dropped, never decoded or kept. After
        ``max_instances`` instances a C-CANCEL is sent.
        """
        if max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        ctx = self._require(abstract_syntax)
        assert ctx.transfer_syntax is not None
        payload = dimse.encode_dataset(identifier, ctx.transfer_syntax)
        message_id = self._next_id()
        instances = 0
        received = 0
        pending = 0
        cancel = _CancelState(self.read_timeout)
        last: DimseMessage | None = None

        def result(status: int | None, error: str | None = None) -> GetResult:
            move = _move_result(status, last, pending, error)
            return GetResult(status, instances, received, cancel.sent, move)

        try:
            await self._send_message(
                ctx.context_id,
                self._request(dimse.C_GET_RQ, abstract_syntax, message_id, priority),
                payload,
            )
            while True:
                try:
                    message = await self._recv_message()
                except ReadTimeout as exc:
                    if not cancel.sent:
                        raise
                    await self._fail()
                    return result(None, str(exc))
                if message.command_field == dimse.C_STORE_RQ:
                    instances += 1
                    received += message.dataset_length
                    await self._answer_store(message)
                    if not cancel.sent and instances >= max_instances:
                        await self._cancel(ctx.context_id, message_id)
                        cancel.start(pending + instances)
                elif message.command_field == dimse.C_GET_RSP:
                    self._check_response(message, ctx.context_id, message_id)
                    last = message
                    status = int(message.command[dimse.Status])
                    if not dimse.is_pending(status):
                        return result(status)
                    pending += 1
                else:
                    raise ProtocolError(
                        f"unexpected {dimse.command_name(message.command)} during C-GET",
                        address=self.peer[0],
                        port=self.peer[1],
                    )
                if cancel.sent and cancel.expired(pending + instances):
                    await self._fail()
                    return result(None, "no final response after C-CANCEL")
        except DicomguardError:
            await self._fail()
            raise

    async def _answer_store(self, request: DimseMessage) -> None:
        """C-STORE-RSP Success for a C-STORE sub-operation (PS3.7 9.3.1.2)."""
        message_id = request.get_int(dimse.MessageID)
        if message_id is None or request.dataset_length == 0:
            raise ProtocolError(
                "C-STORE-RQ without MessageID or data set", address=self.peer[0], port=self.peer[1]
            )
        await self._send_message(
            request.context_id,
            {
                dimse.AffectedSOPClassUID: request.command.get(dimse.AffectedSOPClassUID, ""),
                dimse.CommandField: dimse.C_STORE_RSP,
                dimse.MessageIDBeingRespondedTo: message_id,
                dimse.CommandDataSetType: dimse.NO_DATA_SET,
                dimse.Status: 0x0000,
                dimse.AffectedSOPInstanceUID: request.command.get(dimse.AffectedSOPInstanceUID, ""),
            },
        )

    # -- release and abort ---------------------------------------------------------------------

    async def release(self) -> bool:
        """A-RELEASE (PS3.8 7.2): send A-RELEASE-RQ, wait up to ``read_timeout`` for the RP,
        then close. Returns True for a clean release; a peer that closes, aborts, stays silent
        or answers garbage gives False, never an exception or a hang."""
        if self.closed:
            await close_writer(self.writer)
            return False
        self.closed = True
        clean = False
        try:
            self.writer.write(RELEASE_RQ)
            async with asyncio.timeout(self.read_timeout):
                while True:
                    pdu_type, _body = await _read_pdu(
                        self.reader, self.read_timeout, self._max_p_data, self.peer, "A-RELEASE-RP"
                    )
                    if pdu_type == A_RELEASE_RP:
                        clean = True
                        break
                    if pdu_type == A_RELEASE_RQ:  # release collision, PS3.8 7.2.2
                        self.writer.write(RELEASE_RP)
                    elif pdu_type != P_DATA_TF:  # late P-DATA is dropped; anything else ends it
                        break
        except (DicomguardError, TimeoutError, OSError):
            pass
        await close_writer(self.writer)
        return clean

    async def abort(self) -> None:
        """A-ABORT by the service-user (PS3.8 7.3), then close."""
        if not self.closed:
            self.closed = True
            if not self.writer.is_closing():
                self.writer.write(encode_abort(0, 0))
        await close_writer(self.writer)

    async def __aenter__(self) -> Association:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.release()
        else:
            await self.abort()


class _CancelState:
    """Bounds what follows a C-CANCEL: a deadline and a response budget."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.sent = False
        self._deadline = 0.0
        self._count_at_cancel = 0

    def start(self, count: int) -> None:
        self.sent = True
        self._deadline = asyncio.get_running_loop().time() + self.timeout
        self._count_at_cancel = count

    def expired(self, count: int) -> bool:
        return (
            count - self._count_at_cancel > MAX_RESPONSES_AFTER_CANCEL
            or asyncio.get_running_loop().time() > self._deadline
        )


def _comment(message: DimseMessage) -> str | None:
    value = message.command.get(dimse.ErrorComment)
    return value if isinstance(value, str) else None


def _move_result(
    status: int | None, message: DimseMessage | None, pending: int, error: str | None
) -> MoveResult:
    counts = SubOperations()
    if message is not None:
        counts = SubOperations(
            remaining=message.get_int(dimse.NumberOfRemainingSuboperations),
            completed=message.get_int(dimse.NumberOfCompletedSuboperations),
            failed=message.get_int(dimse.NumberOfFailedSuboperations),
            warning=message.get_int(dimse.NumberOfWarningSuboperations),
        )
    comment = _comment(message) if message is not None else None
    return MoveResult(status, counts, pending, comment, error)


async def echo_once(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    called_ae: str,
    calling_ae: str,
    read_timeout: float,
    contexts: Sequence[PresentationContext] = (VERIFICATION_CONTEXT,),
    max_pdu_length: int = DEFAULT_MAX_PDU_LENGTH,
    peer: tuple[str, int] | None = None,
) -> EchoResult:
    """The probe's hot path: associate, C-ECHO when Verification was accepted, release.

    ``status`` is None when no Verification context was accepted (the AC is still evidence).
    Raises as :func:`associate` does, and as :meth:`Association.c_echo` for the echo.
    """
    assoc = await associate(
        reader,
        writer,
        called_ae=called_ae,
        calling_ae=calling_ae,
        contexts=contexts,
        read_timeout=read_timeout,
        max_pdu_length=max_pdu_length,
        peer=peer,
    )
    status: int | None = None
    if assoc.accept.accepted(VERIFICATION_SOP_CLASS) is not None:
        status = await assoc.c_echo()
    released = await assoc.release()
    return EchoResult(assoc.accept, status, released, assoc.accept.deviations)
