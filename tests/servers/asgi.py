"""An ASGI app served by real uvicorn on 127.0.0.1, on a thread, for tests.

``with Served(app) as served: httpx.get(served.url + "/health")``: uvicorn binds a free
port (port 0) and runs its own event loop on a thread, so sync and async tests, and the
official SDKs, talk to the app over real sockets, as clients in production do.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

__all__ = ["Served"]


class Served:
    """Run ``app`` under uvicorn until the ``with`` block ends."""

    def __init__(self, app: Any, **options: Any) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws="none",
            lifespan="on",
            backlog=4096,
            timeout_graceful_shutdown=5,
            **options,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "uvicorn did not stop"
