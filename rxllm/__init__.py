"""rxllm: LLM responses as reactive streams.

Every call is a cold ``reactivex.Observable`` of chunks (``Runnable.observe``);
``invoke``, ``stream``, ``batch`` and their async twins are bridges over it, and
``pipe`` composes it with operators.
"""

from ._runtime import aiterate, aiterate_batches, iterate
from .config import RunConfig
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EventTooLargeError,
    FirstTokenTimeoutError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RxLLMError,
    StallTimeoutError,
    StreamInterruptedError,
    TotalTimeoutError,
)
from .events import StreamEvent, dispatch_custom_event, tap_events
from .llms import ChatAnthropic, ChatLlamaCpp, ChatOllama, ChatOpenAI, LlamaCpp, Ollama, OpenAI
from .operators import race
from .runnable import Pipeline, Runnable, RunnableLambda
from .schema import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    GenerationChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BaseMessage",
    "ChatAnthropic",
    "ChatLlamaCpp",
    "ChatOllama",
    "ChatOpenAI",
    "EventTooLargeError",
    "FirstTokenTimeoutError",
    "GenerationChunk",
    "HumanMessage",
    "InternalServerError",
    "InvalidInputError",
    "LlamaCpp",
    "NotFoundError",
    "Ollama",
    "OpenAI",
    "PermissionDeniedError",
    "Pipeline",
    "ProtocolError",
    "RateLimitError",
    "RunConfig",
    "Runnable",
    "RunnableLambda",
    "RxLLMError",
    "StallTimeoutError",
    "StreamEvent",
    "StreamInterruptedError",
    "SystemMessage",
    "ToolMessage",
    "TotalTimeoutError",
    "Usage",
    "__version__",
    "aiterate",
    "aiterate_batches",
    "dispatch_custom_event",
    "iterate",
    "race",
    "tap_events",
]
