"""Tools (functions) voice agents can call.

``@tool`` turns a sync or async function into a tool with a JSON schema; a
:class:`ToolRegistry` holds tools, gives ``schemas()`` for ``SessionConfig.tools`` and runs
model calls with ``await registry.invoke(name, arguments, context)``. Built-ins
(``end_call``, ``transfer_call``) act on the call through ``ToolContext.control``.
"""

from switchboard.tools.builtin import (
    BUILTIN_TOOLS,
    builtin_registry,
    collect_digits,
    end_call,
    send_digits,
    transfer_call,
)
from switchboard.tools.context import (
    CallControl,
    CollectedDigits,
    DigitCollector,
    NoCallControl,
    ToolContext,
)
from switchboard.tools.registry import (
    DEFAULT_TIMEOUT_S,
    Tool,
    ToolRegistry,
    ToolResult,
    get_tool,
    tool,
)

__all__ = [
    "BUILTIN_TOOLS",
    "DEFAULT_TIMEOUT_S",
    "CallControl",
    "CollectedDigits",
    "DigitCollector",
    "NoCallControl",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "builtin_registry",
    "collect_digits",
    "end_call",
    "get_tool",
    "send_digits",
    "tool",
    "transfer_call",
]
