"""A runnable packed for the workers: pickled once, with a repr that shows no secret.

rxllm's HTTP models keep a per-loop connection pool (with a lock) that cannot be
pickled and must not travel anyway: a pydantic runnable is packed as its class and
the fields the user set, and rebuilt on the worker with a pool of its own, which the
worker closes when its shard is done (``Sealed.open`` says which models it rebuilt).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from pydantic import BaseModel

from rxllm._steps import operator_name
from rxllm.errors import InvalidInputError
from rxllm.runnable import Pipeline, Runnable

__all__ = ["Sealed", "seal"]


def _rebuild(cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    return cls(**fields)


class _Packer(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, BaseModel) and not isinstance(obj, type):
            fields = {name: getattr(obj, name) for name in obj.model_fields_set}
            return _rebuild, (type(obj), fields)
        return NotImplemented


class _Unpacker(pickle.Unpickler):
    """Unpickles a packed runnable, keeping the models it rebuilds."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.rebuilt: list[BaseModel] = []

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_rebuild":
            return self._rebuild
        return super().find_class(module, name)

    def _rebuild(self, cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
        model = _rebuild(cls, fields)
        self.rebuilt.append(model)
        return model


class Sealed:
    """Pickled bytes of a runnable; its repr never shows them (they may hold keys)."""

    __slots__ = ("data", "name")

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name

    def open(self) -> tuple[Any, list[BaseModel]]:
        """The runnable, rebuilt, and the pydantic models rebuilt inside it."""
        unpacker = _Unpacker(io.BytesIO(self.data))
        return unpacker.load(), unpacker.rebuilt

    def __reduce__(self) -> tuple[Any, ...]:
        return Sealed, (self.data, self.name)

    def __repr__(self) -> str:
        return f"<sealed {self.name}>"


_UNPICKLABLE = (pickle.PicklingError, TypeError, AttributeError)


def _pack(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Packer(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def _culprit(obj: Any) -> str:
    """The innermost pipeline step of ``obj`` that does not pickle, described."""
    if isinstance(obj, Pipeline):
        for number, step in enumerate((obj.first, *obj.steps), start=1):
            try:
                _pack(step)
            except _UNPICKLABLE:
                return f"step {number} of {obj!r}, {_culprit(step)},"
    return repr(obj) if isinstance(obj, Runnable) else f"the operator {operator_name(obj)}"


def seal(runnable: Any) -> Sealed:
    """Pack ``runnable`` for the workers.

    Raises:
        InvalidInputError: the runnable (or something in it, such as a lambda) cannot
            be pickled; the message names the pipeline step that cannot.
    """
    try:
        data = _pack(runnable)
    except _UNPICKLABLE as error:
        raise InvalidInputError(
            f"{_culprit(runnable)} cannot be sent to Dask workers: {error}. Every part "
            "must pickle: use rxllm.operators and module-level functions, not lambdas, "
            "closures or reactivex.operators (closures too)."
        ) from None
    return Sealed(data, type(runnable).__name__)
