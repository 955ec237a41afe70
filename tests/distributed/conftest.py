"""One LocalCluster for the tests of rxllm.distributed: two worker processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="package")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address="127.0.0.1:0",  # a free port: 8787 may be taken
        host="127.0.0.1",
    ) as local:
        yield local


@pytest.fixture(scope="package")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as dask:
        yield dask
