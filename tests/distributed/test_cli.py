"""``rxllm batch FILE --dask ADDRESS``: the prompts run on the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rxllm.cli import main
from tests.distributed.test_batch import echo
from tests.servers.scripted import ScriptedServer


def test_batch_on_dask_with_a_timeout_prints_every_reply_in_order(
    client: Any,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.respond = echo
    file = tmp_path / "prompts.txt"
    file.write_text("a b\nfail now\nc d\n")
    address = client.scheduler.address
    args = ["batch", str(file), "-m", "chat-openai:m", "--base-url", f"{server.url}/v1"]
    status = main([*args, "--json", "--timeout", "30", "--dask", address])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1  # one prompt failed
    assert [r.get("output") for r in records] == ["ab", None, "cd"]
    assert "error" in records[1]
    assert {r.json()["messages"][-1]["content"] for r in server.requests} == {
        "a b",
        "fail now",
        "c d",
    }


def test_batch_on_dask_local_needs_a_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    file = tmp_path / "prompts.txt"
    file.write_text("a\n")
    status = main(["batch", str(file), "-m", "chat-openai:m", "--dask", "local:many"])
    assert status == 2
    assert "local:N" in capsys.readouterr().err
