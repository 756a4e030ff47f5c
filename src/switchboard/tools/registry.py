"""Tools (functions) the model may call: ``@tool``, :class:`ToolRegistry` and ``invoke``.

A tool is a plain sync or async function. Its JSON schema comes from its signature through
pydantic, in the flat OpenAI Realtime function shape the seed uses for ``SessionConfig.tools``::

    @tool
    def get_weather(city: Annotated[str, Field(description="City name")], unit: str = "C") -> dict:
        '''Current weather for a city.'''

    registry.schemas() == [{"type": "function", "name": "get_weather",
                            "description": "Current weather for a city.",
                            "parameters": {"type": "object",
                                           "properties": {"city": {...}, "unit": {...}},
                                           "required": ["city"]}}]

Theory of operation of :meth:`ToolRegistry.invoke` (one model function call)::

    lookup ─unknown─▶ error result
      │
    parse arguments (JSON text or dict) ─bad JSON / not an object─▶ error result
      │
    validate with the tool's pydantic model ─invalid─▶ error result naming each bad field
      │
    inject ToolContext, run (async: awaited; sync: in a worker thread) under the tool's timeout
      │  ├─ timeout ─▶ error result          ├─ exception ─▶ error result (logged)
      ▼
    result made JSON-safe ─not serialisable─▶ error result
      ▼
    ToolResult(ok=True, value=...)  →  ``output`` {"result": value} goes back to the model

Nothing but cancellation escapes ``invoke``: a failing tool never crashes a call. A sync tool
that times out keeps running in its worker thread until it returns (threads cannot be killed);
its result is then discarded, so give blocking tools their own I/O timeouts too.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticSerializationError, to_jsonable_python

from switchboard.errors import ToolError
from switchboard.tools.context import ToolContext
from switchboard.tools.schema import inline_refs, strip_titles

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "get_tool",
    "tool",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
_ATTR = "__switchboard_tool__"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Tool:
    """A registered tool: the function, its validated-arguments model and its schema.

    Attributes:
        name: the function name the model calls.
        description: what the model is told the tool does.
        func: the original function (sync or async).
        arguments_model: pydantic model validating the arguments (context parameter excluded).
        parameters: JSON schema of the arguments (``{"type": "object", "properties": ...}``).
        timeout_s: seconds before an invocation is abandoned.
        context_param: name of the parameter receiving the :class:`ToolContext`, if any.
    """

    name: str
    description: str
    func: Callable[..., Any]
    arguments_model: type[BaseModel]
    parameters: dict[str, Any]
    timeout_s: float = DEFAULT_TIMEOUT_S
    context_param: str | None = None
    #: model field name → function parameter name (they differ only for reserved names).
    param_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def schema(self) -> dict[str, Any]:
        """The flat function shape ``{"type", "name", "description", "parameters"}``."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one invocation.

    Attributes:
        name: the tool name the model asked for.
        ok: whether the tool ran and returned a JSON-safe value.
        value: the JSON-safe return value (None when not ok).
        error: what went wrong, worded for the model (None when ok).
        arguments: the arguments as the model sent them (parsed when they were JSON text).
        duration_ms: wall time of the invocation, validation included.
        call_id: the provider's function-call id, when the caller passed one.
    """

    name: str
    ok: bool
    value: Any = None
    error: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    call_id: str | None = None

    @property
    def output(self) -> dict[str, Any]:
        """What goes back to the model: ``{"result": value}`` or ``{"error": message}``."""
        return {"result": self.value} if self.ok else {"error": self.error}


# -- schema building ---------------------------------------------------------------------------
def _is_context(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return inspect.isclass(annotation) and issubclass(annotation, ToolContext)


def _doc_parts(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """First docstring paragraph, and per-parameter text from a Google-style ``Args:`` block."""
    doc = inspect.getdoc(func) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    match = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", doc, re.MULTILINE)
    if match:
        current: str | None = None
        for line in match.group(1).splitlines():
            item = re.match(r"^\s{2,8}(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if item and item.group(1) not in params:
                current = item.group(1)
                params[current] = item.group(2).strip()
            elif current and line.strip():
                params[current] = f"{params[current]} {line.strip()}"
    return summary, params


def _build(
    func: Callable[..., Any], *, name: str | None, description: str | None, timeout_s: float | None
) -> Tool:
    tool_name = name or func.__name__
    if not _NAME_RE.match(tool_name):
        raise ToolError(f"tool name {tool_name!r} must match [A-Za-z0-9_-]{{1,64}}")
    try:
        hints = get_type_hints(func, include_extras=True)
    except Exception as exc:  # NameError etc. from unresolvable annotations
        raise ToolError(f"tool {tool_name!r}: cannot resolve type hints: {exc}") from exc
    summary, param_docs = _doc_parts(func)
    fields: dict[str, Any] = {}
    param_of: dict[str, str] = {}  # model field name -> function parameter name
    context_param: str | None = None
    for pname, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ToolError(f"tool {tool_name!r}: parameter {pname!r} must be a named parameter")
        if pname not in hints:
            raise ToolError(f"tool {tool_name!r}: parameter {pname!r} has no type annotation")
        annotation = hints[pname]
        if _is_context(annotation):
            context_param = pname
            continue
        default = ... if param.default is param.empty else param.default
        if pname in param_docs:
            annotation = Annotated[annotation, Field(description=param_docs[pname])]
        field_name = pname
        if pname.startswith(("model_", "_")) or hasattr(BaseModel, pname):
            # A name pydantic reserves (json, schema, copy, model_*...): aliased, same schema.
            field_name = f"arg_{len(fields)}_{pname.lstrip('_')}"
            annotation = Annotated[annotation, Field(alias=pname)]
        fields[field_name] = (annotation, default)
        param_of[field_name] = pname
    model_name = "".join(part.title() for part in re.split(r"[_-]", tool_name)) + "Arguments"
    try:
        model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
        parameters = inline_refs(strip_titles(model.model_json_schema()))
    except Exception as exc:  # pydantic cannot build a schema for some annotation
        raise ToolError(f"tool {tool_name!r}: cannot build a JSON schema: {exc}") from exc
    parameters.setdefault("properties", {})
    parameters.pop("additionalProperties", None)
    text = description if description is not None else summary
    if not text:
        raise ToolError(f"tool {tool_name!r} needs a description (docstring or description=)")
    return Tool(
        name=tool_name,
        description=text,
        func=func,
        arguments_model=model,
        parameters=parameters,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        context_param=context_param,
        param_names=param_of,
    )


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout_s: float | None = None
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a tool (``@tool`` or ``@tool(name=..., description=..., timeout_s=...)``).

    The function is returned unchanged (still directly callable) with its :class:`Tool` attached;
    :func:`get_tool` reads it and :meth:`ToolRegistry.load_import_paths` finds it in modules.

    Raises:
        ToolError: the signature cannot be turned into a schema (missing annotation, ``*args``,
            no description...).
    """

    def decorate(fn: F) -> F:
        setattr(fn, _ATTR, _build(fn, name=name, description=description, timeout_s=timeout_s))
        return fn

    return decorate(func) if func is not None else decorate


def get_tool(func: Callable[..., Any]) -> Tool | None:
    """The :class:`Tool` attached to a ``@tool`` function (None for other objects)."""
    found = getattr(func, _ATTR, None)
    return found if isinstance(found, Tool) else None


# -- the registry ------------------------------------------------------------------------------
class ToolRegistry:
    """Tools by name; produces schemas for ``SessionConfig.tools`` and invokes calls."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a :class:`Tool`, a ``@tool`` function, or a plain function (decorated on the fly).

        Raises:
            ToolError: another tool already has the name (unless ``replace``), or the function
                cannot be made into a tool.
        """
        spec = item if isinstance(item, Tool) else get_tool(item)
        if spec is None:
            spec = _build(item, name=None, description=None, timeout_s=None)  # type: ignore[arg-type]  # narrowed: not a Tool
        if (
            spec.name in self._tools
            and not replace
            and self._tools[spec.name].func is not spec.func
        ):
            raise ToolError(f"a tool named {spec.name!r} is already registered")
        self._tools[spec.name] = spec
        return spec

    def get(self, name: str) -> Tool:
        """The tool called ``name``.

        Raises:
            ToolError: no such tool.
        """
        try:
            return self._tools[name]
        except KeyError:
            raise ToolError(f"unknown tool {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool in the flat function shape, in registration order."""
        return [spec.schema() for spec in self._tools.values()]

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A new registry with only ``names`` (in that order).

        Raises:
            ToolError: a name is not registered (all unknown names are listed).
        """
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in self._tools]
        if unknown:
            raise ToolError(f"unknown tools {', '.join(unknown)}; known: {', '.join(self.names())}")
        return ToolRegistry(self._tools[n] for n in wanted)

    def load_import_paths(self, paths: Sequence[str]) -> list[str]:
        """Register user tools named by import path.

        ``"pkg.module:func"`` registers one function (decorated on the fly if needed);
        ``"pkg.module"`` registers every ``@tool`` function defined in the module.

        Returns:
            The names registered, in order.

        Raises:
            ToolError: a path cannot be imported, names nothing, or holds no tools (the message
                names the path).
        """
        added: list[str] = []
        for path in paths:
            module_name, _, attr = path.partition(":")
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # ImportError, or any error raised while importing
                raise ToolError(f"cannot import tool module {path!r}: {exc}") from exc
            if attr:
                func = getattr(module, attr, None)
                if not callable(func):
                    raise ToolError(f"{path!r} does not name a function")
                try:
                    added.append(self.register(func).name)
                except ToolError as exc:
                    raise ToolError(f"{path!r}: {exc}") from exc
                continue
            found = [
                spec
                for value in vars(module).values()
                if (spec := get_tool(value)) is not None
                and getattr(value, "__module__", None) == module.__name__
            ]
            if not found:
                raise ToolError(f"module {path!r} defines no @tool functions")
            added.extend(self.register(spec).name for spec in found)
        return added

    # -- invocation ------------------------------------------------------------------------------
    async def invoke(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        context: ToolContext | None = None,
        *,
        call_id: str | None = None,
    ) -> ToolResult:
        """Run one function call from the model; never raises (except on cancellation).

        Args:
            name: the function name the model called.
            arguments: the arguments, as a dict or as the model's JSON text.
            context: the call; required by tools with a :class:`ToolContext` parameter.
            call_id: the provider's function-call id, copied into the result.
        """
        started = time.perf_counter()

        def done(
            ok: bool, args: dict[str, Any], value: Any = None, error: str | None = None
        ) -> ToolResult:
            elapsed = round((time.perf_counter() - started) * 1000.0, 3)
            if not ok:
                logger.info("tool %s failed in %.1f ms: %s", name, elapsed, error)
            return ToolResult(name, ok, value, error, args, elapsed, call_id)

        args, problem = _parse_arguments(arguments)
        if problem:
            return done(False, args, error=f"invalid arguments for {name}: {problem}")
        spec = self._tools.get(name)
        if spec is None:
            return done(False, args, error=f"unknown tool {name!r}")
        try:
            validated = spec.arguments_model.model_validate(args)
        except ValidationError as exc:
            return done(False, args, error=f"invalid arguments for {name}: {_describe(exc)}")
        kwargs = {
            spec.param_names.get(key, key): getattr(validated, key)
            for key in type(validated).model_fields
        }
        if spec.context_param:
            if context is None:
                return done(False, args, error=f"tool {name} needs a call context")
            kwargs[spec.context_param] = context
        try:
            if spec.is_async:
                value = await asyncio.wait_for(spec.func(**kwargs), spec.timeout_s)
            else:
                value = await asyncio.wait_for(
                    asyncio.to_thread(spec.func, **kwargs), spec.timeout_s
                )
        except TimeoutError:
            return done(False, args, error=f"tool {name} timed out after {spec.timeout_s:g} s")
        except ToolError as exc:
            return done(False, args, error=str(exc))
        except Exception as exc:
            logger.warning("tool %s raised %s", name, type(exc).__name__, exc_info=True)
            return done(False, args, error=f"tool {name} failed: {type(exc).__name__}: {exc}")
        try:
            safe = to_jsonable_python(value)
            json.dumps(safe)
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            return done(False, args, error=f"tool {name} returned a value that is not JSON: {exc}")
        return done(True, args, value=safe)


def _parse_arguments(
    arguments: Mapping[str, Any] | str | None,
) -> tuple[dict[str, Any], str | None]:
    if arguments is None or arguments == "":
        return {}, None
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return {}, f"arguments are not valid JSON ({exc.msg})"
        if not isinstance(parsed, dict):
            return {}, "arguments must be a JSON object"
        return parsed, None
    return dict(arguments), None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<arguments>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
