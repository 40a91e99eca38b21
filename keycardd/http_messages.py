"""HTTP/1.1 requests out of a connection's bytes, and answers back into bytes: the http hook listener's framing.

httptools (the llhttp parser in C that uvicorn uses) does all the parsing: request line, headers, Content-Length
and chunked bodies, keep-alive and pipelining, and refuses malformed or ambiguous framing. This module only turns
its callbacks into a queue of events the server reads one at a time (a request's head, then its body's pieces, then
its end), bounds the head's size (llhttp has no limit of its own), and writes answers, whose few shapes need no
library. It replaced h11, whose pure-Python parsing and framing cost about 45 us of the daemon's CPU per request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from http import HTTPStatus

import httptools


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: bytes
    target: bytes
    headers: dict[bytes, bytes]
    """Lower-cased names; of a repeated header, the last value (a trailer's fields are not headers)."""
    repeated: frozenset[bytes]
    """The lower-cased names that came more than once: which value counts would be a guess, so a header the server
    reads must not be among them."""
    keep_alive: bool
    """May the connection serve another request after this one (HTTP/1.1 without `Connection: close`)?"""


@dataclass(frozen=True, slots=True)
class BadRequest:
    """Bytes that are not an acceptable request: answered with `status` and the connection closed."""

    status: int
    message: str


class _EndOfMessage:
    """The request's body is complete."""


class _Closed:
    """The client closed its side between requests."""


END_OF_MESSAGE = _EndOfMessage()
CLOSED = _Closed()
RequestEvent = RequestHead | bytes | _EndOfMessage | _Closed | BadRequest
"""What `RequestReader.next_event` returns: `bytes` are a piece of the current request's body."""


class RequestReader:
    """Parses one connection's requests; `feed` it what arrives, take `next_event`s until it returns None."""

    def __init__(self, max_head: int) -> None:
        self._max_head = max_head
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque[RequestEvent] = deque()
        self._target = b""
        self._headers: dict[bytes, bytes] = {}
        self._repeated: set[bytes] = set()
        self._in_head = False
        self._in_message = False
        self._head_size = 0
        """The request line's and headers' bytes parsed so far."""
        self._head_fed = 0
        """Bytes fed while a head was still incomplete: a header that never ends is parsed (and held) by no
        callback until it does, so this bounds it."""
        self._done = False
        """Nothing more is parsed: the client closed, or sent something refused."""

    @property
    def started(self) -> bool:
        """Has (part of) a request arrived that is not yet taken?"""
        return self._in_message or bool(self._events)

    def next_event(self) -> RequestEvent | None:
        """The next event, or None when more bytes are needed."""
        return self._events.popleft() if self._events else None

    def feed(self, data: bytes) -> None:
        """Parse what arrived; b"" is the end of the client's stream."""
        if self._done:
            return
        if not data:
            self._done = True
            if not self._in_message:
                self._events.append(CLOSED)
            elif self._in_head:
                self._fail(400, "malformed HTTP request: the connection closed before the request head ended")
            else:
                self._fail(400, "malformed HTTP request: the connection closed before the body ended")
            return
        if self._in_head:
            self._head_fed += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # refused in on_headers_complete already
            self._done = True
        except httptools.HttpParserError as exc:
            if not self._done:
                self._fail(400, f"malformed HTTP request: {exc}")
            return
        if self._in_head and not self._done and max(self._head_size, self._head_fed) > self._max_head:
            self._fail(431, "request headers too large")

    def _fail(self, status: int, message: str) -> None:
        self._done = True
        self._events.append(BadRequest(status, message))

    # httptools' callbacks, in the order it calls them for each request.

    def on_message_begin(self) -> None:
        self._in_message = self._in_head = True
        self._target, self._headers, self._repeated = b"", {}, set()
        self._head_size = self._head_fed = 0

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header field, or (after the head) a chunked body's trailer field, which is dropped: it would arrive
        after the head was checked, and may not carry what decides how a request is handled (RFC 9110 6.5.1)."""
        if not self._in_head:
            return
        key = name.lower()
        if key in self._headers:
            self._repeated.add(key)
        self._headers[key] = value
        self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._done:
            return
        if self._head_size > self._max_head:
            self._fail(431, "request headers too large")
        elif self._parser.get_http_version() not in ("1.0", "1.1"):
            self._fail(505, "only HTTP/1.0 and HTTP/1.1 are served here")
        elif self._parser.should_upgrade():  # llhttp would hand the body over as another protocol's bytes
            self._fail(400, "protocol upgrades are not supported here")
        else:
            method = self._parser.get_method()
            # HTTP/1.0 keep-alive would need a `Connection: keep-alive` answer; such a client gets one request.
            keep_alive = self._parser.should_keep_alive() and self._parser.get_http_version() == "1.1"
            self._events.append(RequestHead(method, self._target, self._headers, frozenset(self._repeated), keep_alive))

    def on_body(self, body: bytes) -> None:
        if not self._done:
            self._events.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if not self._done:
            self._events.append(END_OF_MESSAGE)


_STATUS_LINES = {status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode()) for status in HTTPStatus}
_JSON_HEAD = b"content-type: application/json\r\ncontent-length: %d\r\n"
_CLOSE = b"connection: close\r\n"


def json_response(status: int, body: bytes, *, close: bool) -> bytes:
    """A whole answer with a JSON body, ready to send in one write; `close` says the connection ends after it."""
    return b"".join((_STATUS_LINES[status], _JSON_HEAD % len(body), _CLOSE if close else b"", b"\r\n", body))
