"""Run events in LangChain's ``astream_events`` format.

``Runnable.observe_events`` (an Observable), ``astream_events`` and ``stream_events``
(iterators) report every run a call makes as plain dicts with LangChain's keys, so code
written against LangChain's events runs unchanged: ``event``, ``name``, ``run_id``,
``tags``, ``metadata``, ``data``, ``parent_ids``. ``observe_events`` gives the events of
any Observable that makes runs (a call with operators applied, say), ``tap_events`` shows
them to a handler while the chunks flow on, and ``dispatch_custom_event`` adds your own.

Deliberate differences from LangChain: a sync twin (``stream_events``); a model without
token streaming still reports one ``*_stream`` event; stopping early is not an error
and reports no end event.
"""

from ._runs import EventFilter, StreamEvent, dispatch_custom_event, observe_events, tap_events

__all__ = ["EventFilter", "StreamEvent", "dispatch_custom_event", "observe_events", "tap_events"]
