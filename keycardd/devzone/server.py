"""Running the dev zone: uvicorn on 127.0.0.1 in a background thread, as a context manager (tests, `keycardctl dev
zone`)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from keycardd.devzone.app import create_app
from keycardd.devzone.pages import DEFAULT_PAGE_SIZE
from keycardd.devzone.state import ZoneState


class DevZone:
    def __init__(
        self, zone_id: str = "devzone", port: int = 0, *, page_size: int = DEFAULT_PAGE_SIZE, require_auth: bool = False
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.state = ZoneState(zone_id=zone_id, issuer=f"http://127.0.0.1:{self.port}", page_size=page_size)
        self.state.accounts.required = require_auth
        config = uvicorn.Config(create_app(self.state), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def issuer(self) -> str:
        return self.state.issuer

    def start(self) -> DevZone:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the dev zone did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> DevZone:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
