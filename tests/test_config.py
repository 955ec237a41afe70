"""RunConfig: dicts accepted, typos refused."""

from __future__ import annotations

import uuid

import pytest

from rxllm import InvalidInputError, RunConfig
from rxllm.config import ensure_config, ensure_configs


def test_dict_and_model_are_equivalent() -> None:
    run_id = uuid.uuid4()
    config = ensure_config({"tags": ["t"], "metadata": {"m": 1}, "run_name": "n", "run_id": run_id})
    assert config == RunConfig(tags=["t"], metadata={"m": 1}, run_name="n", run_id=run_id)
    assert ensure_config(config) is config
    assert ensure_config(None) == RunConfig()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_concurency": 2}, "max_concurency: Extra inputs are not permitted"),
        ({"max_concurrency": -1}, "greater than 0"),
        ({"tags": "not-a-list"}, "tags"),
        ("tags", "must be a RunConfig or a dict"),
    ],
)
def test_bad_configs(config: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ensure_config(config)  # type: ignore[arg-type]


def test_ensure_configs_gives_one_for_all_or_one_each() -> None:

    shared = ensure_configs({"tags": ["a"]}, 3)
    assert [c.tags for c in shared] == [["a"]] * 3
    assert [c.tags for c in ensure_configs([None, {"tags": ["b"]}], 2)] == [[], ["b"]]
    with pytest.raises(InvalidInputError, match="got 1 configs for 2 inputs"):
        ensure_configs([None], 2)
    with pytest.raises(InvalidInputError, match="config must be a RunConfig or a dict"):
        ensure_configs(["nope"], 1)  # type: ignore[list-item]
