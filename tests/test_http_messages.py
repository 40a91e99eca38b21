"""The http hook listener's framing (keycardd/http_messages.py) fed bytes directly: what reaches the server as a
request, and what is refused before it does. The listener's behaviour on real sockets is in test_http_limits.py and
test_http_hooks.py."""

from __future__ import annotations

from keycardd.http_messages import (
    CLOSED,
    END_OF_MESSAGE,
    BadRequest,
    RequestEvent,
    RequestHead,
    RequestReader,
    json_response,
)

LIMIT = 1024


def post(body: bytes, *extra: bytes) -> bytes:
    head = b"POST /hooks/claude?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def events(reader: RequestReader) -> list[RequestEvent]:
    taken = []
    while (event := reader.next_event()) is not None:
        taken.append(event)
    return taken


def test_pipelined_requests_come_out_in_order_with_their_bodies() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b'{"a":1}') + post(b'{"b":2}', b"X-Keycard-Run: r1\r\n"))
    first, body1, end1, second, body2, end2 = events(reader)
    assert isinstance(first, RequestHead) and isinstance(second, RequestHead)
    assert (first.method, first.target, first.keep_alive) == (b"POST", b"/hooks/claude?x=1", True)
    assert second.headers[b"x-keycard-run"] == b"r1"  # names lower-cased
    assert (body1, body2) == (b'{"a":1}', b'{"b":2}')
    assert end1 is END_OF_MESSAGE and end2 is END_OF_MESSAGE
    assert not reader.started


def test_a_request_split_anywhere_is_the_same_request() -> None:
    data = post(b'{"tool_name":"Read"}', b"Authorization: Bearer abc\r\n")
    reader = RequestReader(LIMIT)
    for index in range(len(data)):
        reader.feed(data[index : index + 1])
    taken = events(reader)
    head = taken[0]
    assert isinstance(head, RequestHead) and head.headers[b"authorization"] == b"Bearer abc"
    assert b"".join(event for event in taken if isinstance(event, bytes)) == b'{"tool_name":"Read"}'
    assert taken[-1] is END_OF_MESSAGE


def test_a_chunked_body_is_reassembled() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(b'POST /hooks/claude HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n')
    reader.feed(b'3\r\n":1\r\n1\r\n}\r\n0\r\n\r\n')
    taken = events(reader)
    assert b"".join(event for event in taken if isinstance(event, bytes)) == b'{"a":1}'
    assert taken[-1] is END_OF_MESSAGE


def test_a_head_that_never_ends_is_refused_once_over_the_limit_however_it_trickles() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(b"POST /hooks/claude HTTP/1.1\r\nX-Pad: ")
    for _ in range(LIMIT // 100 + 1):
        assert reader.next_event() is None
        reader.feed(b"y" * 100)
    assert reader.next_event() == BadRequest(431, "request headers too large")
    reader.feed(b"\r\n\r\n")  # nothing more is parsed after a refusal
    assert reader.next_event() is None


def test_a_complete_head_over_the_limit_is_refused_and_never_a_request() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b"{}", b"X-Pad: " + b"y" * LIMIT + b"\r\n"))
    assert events(reader) == [BadRequest(431, "request headers too large")]


def test_bad_framing_is_a_400_after_the_requests_before_it() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b"{}") + b"NOT HTTP AT ALL\r\n\r\n")
    *request, refusal = events(reader)
    assert [type(event) for event in request] == [RequestHead, bytes, type(END_OF_MESSAGE)]
    assert isinstance(refusal, BadRequest) and refusal.status == 400


def test_conflicting_lengths_are_refused() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b"{}", b"Transfer-Encoding: chunked\r\n"))
    taken = events(reader)
    assert len(taken) == 1 and isinstance(taken[0], BadRequest) and taken[0].status == 400


def test_an_upgrade_request_is_refused_not_decided_without_its_body() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b'{"a":1}', b"Connection: upgrade\r\nUpgrade: websocket\r\n"))
    assert events(reader) == [BadRequest(400, "protocol upgrades are not supported here")]


def test_the_end_of_the_stream_between_requests_closes_and_within_one_is_a_400() -> None:
    reader = RequestReader(LIMIT)
    reader.feed(post(b"{}"))
    events(reader)
    reader.feed(b"")
    assert events(reader) == [CLOSED]
    truncated = RequestReader(LIMIT)
    truncated.feed(post(b'{"a":1}')[:-3])
    head = truncated.next_event()
    assert isinstance(head, RequestHead) and truncated.started
    events(truncated)
    truncated.feed(b"")
    refusal = truncated.next_event()
    assert isinstance(refusal, BadRequest) and refusal.status == 400


def test_connection_close_and_http_1_0_are_not_kept_alive() -> None:
    http_1_0 = post(b"{}", b"Connection: keep-alive\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    for data in (post(b"{}", b"Connection: close\r\n"), post(b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1), http_1_0):
        reader = RequestReader(LIMIT)
        reader.feed(data)
        head = reader.next_event()
        assert isinstance(head, RequestHead) and not head.keep_alive


def test_answers_are_framed_with_their_length_and_the_close() -> None:
    assert json_response(200, b"{}", close=False) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )
    closing = json_response(403, b'{"error":"x"}', close=True)
    assert closing.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"\r\nconnection: close\r\n\r\n" in closing
