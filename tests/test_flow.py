"""Flow control between a bridge and its sources: no lost wake-ups, bounded buffer."""

from __future__ import annotations

import asyncio
from typing import Any

from rxllm._runtime._flow import FlowScope


class DrainingList(list[Any]):
    """A waiter (or hand-over) list whose ``append`` lets the consumer drain everything first.

    That is the interleaving that once lost a wake-up: the producer found the buffer
    full, the consumer then emptied it while no waiter was registered yet.
    """

    def __init__(self, scope: FlowScope) -> None:
        super().__init__()
        self.scope = scope

    def append(self, item: Any) -> None:
        while self.scope.consumed < self.scope.produced:
            self.scope.took_one()
        super().append(item)


async def test_a_consumer_draining_during_registration_does_not_strand_the_producer() -> None:
    scope = FlowScope(high=4, low=1)
    scope.produced = 4
    scope._waiters = DrainingList(scope)
    await asyncio.wait_for(scope.room(), timeout=5)
    assert scope.consumed == 4
    assert list(scope._waiters) == []


async def test_a_full_buffer_waits_until_the_consumer_reaches_low_water() -> None:
    scope = FlowScope(high=4, low=1)
    scope.produced = 4
    waiting = asyncio.ensure_future(scope.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    scope.took_one()
    scope.took_one()
    await asyncio.sleep(0)
    assert not waiting.done()  # 2 left: above low water
    scope.took_one()  # 1 left: low water
    await asyncio.wait_for(waiting, timeout=5)


async def test_room_returns_at_once_when_not_full() -> None:
    scope = FlowScope(high=4, low=1)
    scope.produced = 3
    await asyncio.wait_for(scope.room(), timeout=5)
    assert scope._waiters == []


async def test_hand_over_returns_at_once_unless_a_consumer_is_waiting() -> None:
    scope = FlowScope()
    scope.produced = 1
    await asyncio.wait_for(scope.hand_over(), timeout=5)
    assert scope._handovers == []


async def test_hand_over_waits_until_the_waiting_consumer_has_taken_an_item() -> None:
    scope = FlowScope()
    scope.consumer_waiting = True
    scope.produced = 2
    waiting = asyncio.ensure_future(scope.hand_over())
    await asyncio.sleep(0)
    assert not waiting.done()
    scope.took_one()
    await asyncio.wait_for(waiting, timeout=5)
    assert scope._handovers == []


async def test_a_consumer_draining_during_a_hand_over_does_not_strand_the_producer() -> None:
    scope = FlowScope()
    scope.consumer_waiting = True
    scope.produced = 3
    scope._handovers = DrainingList(scope)
    await asyncio.wait_for(scope.hand_over(), timeout=5)
    assert scope.consumed == 3
    assert list(scope._handovers) == []
