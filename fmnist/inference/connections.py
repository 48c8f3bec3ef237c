"""What one client may hold of the server: connections and time, below the ASGI app.

uvicorn (under LitServe) keeps an idle or slowloris connection open for ever, and closes the
whole connection when a client half-closes after its request. :func:`guarded_protocol` makes
uvicorn's HTTP protocol class (httptools' or h11's) keep these promises, per HTTP process
(docs/reliability.md has the table of answers):

- A client (an IP address) holds at most ``per_client`` connections; one more closes its
  oldest idle one, or is answered 429 when all are busy.
- A request's headers must arrive within ``read_timeout`` seconds of the connection's start
  or of the previous answer (else 408, closed); over :data:`MAX_HEADER_BYTES`, 431. The body
  has its own deadline: ``fmnist.inference.serve.read_body``.
- A client that half-closes during a request still gets the answer, then the connection closes.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

#: The most bytes of request line and headers one request may send.
MAX_HEADER_BYTES = 64 * 1024


def guarded_protocol(read_timeout: float, per_client: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, guarded as the module's docstring says (pass it as
    uvicorn's ``http=``). The HTTP processes are forked from the one that calls this."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    # The guard comes first in the bases, so its super() calls reach uvicorn's protocol; each
    # class made here has its own table of clients.
    settings = {"read_timeout": read_timeout, "per_client": per_client, "clients": {}}
    return type("GuardedProtocol", (ConnectionGuard, AutoHTTPProtocol), settings)


class ConnectionGuard:
    """The guard's half of :func:`guarded_protocol`'s class: mixed in before uvicorn's HTTP
    protocol (imported lazily there, so importing this module needs no uvicorn)."""

    read_timeout: float
    per_client: int
    #: This process's open connections, per client address, oldest first.
    clients: dict[str, list[ConnectionGuard]]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.half_closed, self.pending_bytes = False, 0
        self.deadline: asyncio.TimerHandle | None = None
        self.host = self.client[0] if self.client else ""
        held = self.clients.setdefault(self.host, [])
        if len(held) >= self.per_client:  # make room: close the oldest idle connection
            idle = next((c for c in held if c.idle()), None)
            if idle is None:
                self.host = None  # not counted
                busy = f"{len(held)} connections from your address are busy, the most one"
                self.answer_and_close(429, f"{busy} client may hold: wait for one.")
                return
            held.remove(idle)
            idle.host = None
            idle.close_idle()
        held.append(self)
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        if self.host is not None:
            held = self.clients.get(self.host, [])
            if self in held:
                held.remove(self)
            if not held:
                self.clients.pop(self.host, None)
            self.host = None
        super().connection_lost(exc)  # type: ignore[misc]

    def idle(self) -> bool:
        """No request in progress: between requests, or its headers not yet complete."""
        return self.cycle is None or self.cycle.response_complete

    def arm(self) -> None:
        """The headers' deadline, from now."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(self.read_timeout, self.expired)

    def expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing() or not self.idle():
            return  # a request in progress: the body's deadline and the model's apply
        self.close_idle(f"No complete request within {self.read_timeout:g} s.")

    def close_idle(self, reason: str = "Too many connections from your address.") -> None:
        """Close a connection without a request in progress: with a 408 when part of a
        request's headers came, silently when none did (an idle keep-alive connection)."""
        if self.pending_bytes:
            self.answer_and_close(408, reason)
        else:
            self.transport.close()

    def answer_and_close(self, status: int, detail: str) -> None:
        """A whole HTTP/1.1 answer with a JSON ``detail`` (there is no request cycle to send it)."""
        if not self.transport.is_closing():
            body = json.dumps({"detail": detail}).encode()
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: "
                f"application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self.idle() and not self.transport.is_closing():  # still in the headers
            self.pending_bytes += len(data)
            if self.pending_bytes > MAX_HEADER_BYTES:
                self.answer_and_close(
                    431, f"The request's headers are over {MAX_HEADER_BYTES:,} bytes."
                )

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self.pending_bytes = 0
        if self.half_closed:
            self.transport.close()
        elif not self.transport.is_closing():
            self.arm()

    def eof_received(self) -> bool:
        """The client closed its sending side: answer what is in progress, then close."""
        self.half_closed = True
        if self.idle():
            if self.pending_bytes:
                self.answer_and_close(400, "The connection ended inside the headers.")
            return False  # nothing to answer: close
        if self.cycle.more_body:  # the body ends here; the middleware checks its length
            self.cycle.more_body = False
            self.cycle.message_event.set()
        return True  # keep the transport open for the answer
