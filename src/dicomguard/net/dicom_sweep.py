"""The sweep fast path: association + C-ECHO + release as one callback-driven state machine.

Sweeping a /16 for DICOM services is dominated by per-connection overhead, not by the network.
This module does the quick probe's whole exchange in an `asyncio.Protocol` (no StreamReader,
no per-read timeout context, one timer per connection) while keeping the validation of the full
client: every PDU goes through `net.pdu`'s strict decoders, so a port answering garbage or a
bogus A-ASSOCIATE-AC header is never called DICOM.

    A-ASSOCIATE-RQ ─► AC ─► P-DATA (C-ECHO-RQ) ─► P-DATA (C-ECHO-RSP) ─► A-RELEASE-RQ ─► RP
                   └► RJ: a well-formed rejection (the port is DICOM)

The connection goes through the Connector (scope guard, rate limit, per-host cap); the read
timeout applies to each expected PDU.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import cast

from dicomguard.errors import DicomguardError, ProtocolError, ReadTimeout
from dicomguard.net import dimse
from dicomguard.net.connector import Connector
from dicomguard.net.dicom_ul import (
    DEFAULT_MAX_PDU_LENGTH,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    P_DATA_SLACK,
    VERIFICATION_CONTEXT,
    VERIFICATION_SOP_CLASS,
    encode_echo_rq,
)
from dicomguard.net.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RP,
    P_DATA_TF,
    PDU_NAMES,
    RELEASE_RQ,
    AssociateAccept,
    AssociateReject,
    check_length,
    decode_abort,
    decode_associate_ac,
    decode_associate_rj,
    decode_header,
    decode_p_data,
    encode_associate_rq,
)

_PROPOSED = (VERIFICATION_CONTEXT,)
_AWAIT_AC, _AWAIT_ECHO, _AWAIT_RP, _DONE = range(4)
_WAITING_FOR = {_AWAIT_AC: "A-ASSOCIATE-AC", _AWAIT_ECHO: "C-ECHO-RSP", _AWAIT_RP: "A-RELEASE-RP"}


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What the quick exchange learned. Exactly one of accept / reject is set when the peer
    spoke DICOM; `error` says what went wrong otherwise (or after the AC)."""

    accept: AssociateAccept | None = None
    reject: AssociateReject | None = None
    echo_status: int | None = None
    released: bool = False
    error: str | None = None
    failure: DicomguardError | None = None


@functools.lru_cache(maxsize=1024)
def _decode_ac_small(body: bytes) -> AssociateAccept:
    return decode_associate_ac(body, _PROPOSED)


def _decode_ac(body: bytes) -> AssociateAccept:
    """Within one scan every device of a product answers with the same A-ASSOCIATE-AC bytes
    (it echoes our AE titles): small ones are decoded once (the result is immutable).
    Invalid bodies raise every time (exceptions are not cached)."""
    if len(body) <= 4096:
        return _decode_ac_small(body)
    return decode_associate_ac(body, _PROPOSED)


@functools.lru_cache(maxsize=256)
def _echo_status_small(body: bytes) -> int:
    pdvs = decode_p_data(body)
    if len(pdvs) != 1 or not (pdvs[0].is_command and pdvs[0].is_last) or \
            pdvs[0].context_id != 1:
        raise ProtocolError("C-ECHO-RSP not in one last command fragment on context 1")
    command = dimse.decode_command(pdvs[0].data)
    if command.get(dimse.CommandField) != dimse.C_ECHO_RSP or \
            command.get(dimse.MessageIDBeingRespondedTo) != 1:
        raise ProtocolError("response is not the C-ECHO-RSP to message 1")
    status = command.get(dimse.Status)
    if not isinstance(status, int):
        raise ProtocolError("C-ECHO-RSP without a status")
    return status


def _echo_status(body: bytes) -> int:
    """The status of the C-ECHO-RSP to message 1 in a P-DATA-TF body (strictly checked);
    the few distinct answers a scan sees are decoded once."""
    if len(body) > 1024:
        raise ProtocolError("C-ECHO-RSP P-DATA-TF is implausibly long")
    return _echo_status_small(body)


class _Exchange(asyncio.Protocol):
    def __init__(self, rq: bytes, read_timeout: float, where: tuple[str, int]) -> None:
        self.rq = rq
        self.read_timeout = read_timeout
        self.where = where
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.buffer = bytearray()
        self.state = _AWAIT_AC
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.accept: AssociateAccept | None = None
        self.reject: AssociateReject | None = None
        self.echo_status: int | None = None
        self.released = False
        self.failure: DicomguardError | None = None

    # -- protocol callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the Transport interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.rq)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.state == _DONE:
            return
        self.buffer += data
        try:
            while len(self.buffer) >= 6 and self.state != _DONE:
                pdu_type, length = decode_header(bytes(self.buffer[:6]))
                check_length(pdu_type, length, DEFAULT_MAX_PDU_LENGTH + P_DATA_SLACK)
                if len(self.buffer) < 6 + length:
                    return
                body = bytes(self.buffer[6:6 + length])
                del self.buffer[:6 + length]
                self._pdu(pdu_type, body)
        except ProtocolError as exc:
            waiting = _WAITING_FOR.get(self.state, "nothing")
            self._finish(ProtocolError(f"not a DICOM PDU while waiting for {waiting}: {exc}",
                                       address=self.where[0], port=self.where[1]))
        except Exception as exc:  # a decoder bug must end this exchange, not hang it
            self._finish(DicomguardError(f"internal error in the DICOM exchange: "
                                         f"{type(exc).__name__}: {exc}"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != _DONE:
            waiting = _WAITING_FOR.get(self.state, "nothing")
            self._finish(ProtocolError(f"connection closed by peer while waiting for {waiting}",
                                       address=self.where[0], port=self.where[1]))

    # -- state machine ------------------------------------------------------------------------

    def _pdu(self, pdu_type: int, body: bytes) -> None:
        assert self.transport is not None
        if pdu_type == A_ABORT:
            abort = decode_abort(body)
            self._finish(ProtocolError(f"peer aborted: {abort.description}",
                                       address=self.where[0], port=self.where[1]))
            return
        if self.state == _AWAIT_AC:
            if pdu_type == A_ASSOCIATE_RJ:
                self.reject = decode_associate_rj(body)
                self._finish(None)
            elif pdu_type == A_ASSOCIATE_AC:
                self.accept = _decode_ac(body)
                if self.accept.accepted(VERIFICATION_SOP_CLASS) is not None:
                    self.transport.write(encode_echo_rq(1, 1, self.accept.max_pdu_length))
                    self.state = _AWAIT_ECHO
                else:
                    self.transport.write(RELEASE_RQ)
                    self.state = _AWAIT_RP
                self._arm()
            else:
                raise ProtocolError(f"unexpected {PDU_NAMES[pdu_type]} instead of an "
                                    "A-ASSOCIATE-AC/RJ")
        elif self.state == _AWAIT_ECHO:
            if pdu_type != P_DATA_TF:
                raise ProtocolError(f"unexpected {PDU_NAMES[pdu_type]} instead of C-ECHO-RSP")
            status = _echo_status(body)
            self.echo_status = status
            self.transport.write(RELEASE_RQ)
            self.state = _AWAIT_RP
            self._arm()
        elif self.state == _AWAIT_RP:
            if pdu_type == A_RELEASE_RP:
                self.released = True
            self._finish(None)  # anything else after our release request: done either way

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def _timed_out(self) -> None:
        waiting = _WAITING_FOR.get(self.state, "nothing")
        self._finish(ReadTimeout(self.where[0], self.where[1], "dicom",
                                 f"no complete PDU within {self.read_timeout:g} s ({waiting})"))

    def _finish(self, failure: DicomguardError | None) -> None:
        if self.state == _DONE:
            return
        self.state = _DONE
        self.failure = failure
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            if failure is not None and self.accept is not None:
                self.transport.abort()  # an association in an unknown state: cut it
            else:
                self.transport.close()
        if not self.done.done():
            self.done.set_result(None)


async def echo_sweep(connector: Connector, address: str, port: int, *, called_ae: str,
                     calling_ae: str, read_timeout: float) -> SweepResult:
    """Associate (Verification only), C-ECHO, release. Raises only for the connection itself
    (ConnectivityError, OutOfScopeError); everything the peer does lands in the result."""
    rq = encode_associate_rq(called_ae, calling_ae, _PROPOSED, DEFAULT_MAX_PDU_LENGTH,
                             IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
    ex = await connector.open_protocol(
        address, port, lambda: _Exchange(rq, read_timeout, (address, port)), "dicom")
    try:
        # Backstop: each expected PDU has its own timer; this bounds the whole exchange.
        async with asyncio.timeout(3 * read_timeout + 1):
            await ex.done
    except TimeoutError:
        ex._finish(ReadTimeout(address, port, "dicom", "exchange did not complete"))
    except asyncio.CancelledError:
        if ex.transport is not None:
            ex.transport.abort()
        raise
    finally:
        connector.release_slot(address)
    return SweepResult(ex.accept, ex.reject, ex.echo_status, ex.released,
                       str(ex.failure) if ex.failure else None, ex.failure)
