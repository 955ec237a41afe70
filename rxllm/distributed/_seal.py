"""A runnable packed for the workers: pickled once, with a repr that shows no secret.

rxllm's HTTP models keep a per-loop connection pool (with a lock) that cannot be
pickled and must not travel anyway: a pydantic runnable is packed as its class and
the fields the user set, and rebuilt on the worker with a pool of its own.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from pydantic import BaseModel

from rxllm.errors import InvalidInputError

__all__ = ["Sealed", "seal"]


def _rebuild(cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    return cls(**fields)


class _Packer(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, BaseModel) and not isinstance(obj, type):
            fields = {name: getattr(obj, name) for name in obj.model_fields_set}
            return _rebuild, (type(obj), fields)
        return NotImplemented


class Sealed:
    """Pickled bytes of a runnable; its repr never shows them (they may hold keys)."""

    __slots__ = ("data", "name")

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name

    def open(self) -> Any:
        """The runnable, rebuilt."""
        return pickle.loads(self.data)

    def __reduce__(self) -> tuple[Any, ...]:
        return Sealed, (self.data, self.name)

    def __repr__(self) -> str:
        return f"<sealed {self.name}>"


def seal(runnable: Any) -> Sealed:
    """Pack ``runnable`` for the workers.

    Raises:
        InvalidInputError: the runnable (or something in it, such as a lambda) cannot
            be pickled; the message names it.
    """
    buffer = io.BytesIO()
    try:
        _Packer(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(runnable)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise InvalidInputError(
            f"{runnable!r} cannot be sent to Dask workers: {error}. Use module-level "
            "functions instead of lambdas or closures."
        ) from None
    return Sealed(buffer.getvalue(), type(runnable).__name__)
