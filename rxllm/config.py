"""``RunConfig``: the per-call options every Runnable method accepts.

Pass a ``RunConfig`` or a plain dict with the same keys (LangChain's shape:
``config={"max_concurrency": 4, "tags": ["x"]}``); unknown keys are rejected, so a typo
fails loudly instead of being ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidInputError

__all__ = ["RunConfig", "ensure_config", "ensure_configs"]


class RunConfig(BaseModel):
    """Options for one call.

    Attributes:
        tags: labels copied onto every event of the run and its children.
        metadata: key/values copied onto every event of the run and its children.
        run_name: the name events report for this run (defaults to the runnable's name).
        run_id: the id of this run's events (a new uuid4 by default).
        max_concurrency: at most this many calls in flight at once in ``batch``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_name: str | None = None
    run_id: uuid.UUID | None = None
    max_concurrency: int | None = Field(default=None, gt=0)


_DEFAULT = RunConfig()


def ensure_config(config: RunConfig | Mapping[str, Any] | None) -> RunConfig:
    """Validate ``config`` into a ``RunConfig``.

    Raises:
        InvalidInputError: for unknown keys or values of the wrong type.
    """
    if config is None:
        return _DEFAULT
    if isinstance(config, RunConfig):
        return config
    if not isinstance(config, Mapping):
        raise InvalidInputError(
            f"config must be a RunConfig or a dict, not {type(config).__name__}"
        )
    try:
        return RunConfig.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInputError(f"invalid config: {problems}") from None


def ensure_configs(
    config: RunConfig | Mapping[str, Any] | Sequence[RunConfig | Mapping[str, Any] | None] | None,
    count: int,
) -> list[RunConfig]:
    """The configs of a batch of ``count`` inputs: one for all, or a list of one each.

    Raises:
        InvalidInputError: for a list of another length, or a config that is not one.
    """
    if isinstance(config, list | tuple):
        if len(config) != count:
            raise InvalidInputError(
                f"got {len(config)} configs for {count} inputs; pass one config or one each"
            )
        return [ensure_config(c) for c in config]
    return [ensure_config(config)] * count  # type: ignore[arg-type]
