"""Built-in tools that act on the call through :class:`~switchboard.tools.context.CallControl`.

* ``end_call(goodbye)`` — the bridge speaks the goodbye, waits for the carrier's playout mark,
  then hangs up through the carrier's REST API.
* ``transfer_call(destination, mode="cold", summary=None)`` — the carrier transfers the caller
  (Twilio ``<Dial>`` redirect, Telnyx ``transfer``), if the agent's dial plan allows
  ``destination`` (its ``directory`` and ``transfer_allow``); otherwise the model gets the
  refusal as the tool's error. ``mode="warm"`` (``bridge/warm_transfer.py``) holds the caller,
  dials, briefs whoever answers with ``summary`` and joins them; the destination must also
  pass ``SWITCHBOARD_OUTBOUND_ALLOW``. When nobody answers the tool returns why, and the
  caller is back with the agent (docs/telephony.md#warm-transfer).
* ``collect_digits(prompt, max_digits, finish_on_key, timeout_s, redact)`` — the caller keys in
  a number (account, PIN) without the model hearing each key. With ``redact`` the model gets
  ``****`` and whether anything was keyed, never the digits: they stay in the call's tool context
  (``variables["collected_digits"]``, which HTTP tools send) and out of the transcript, the
  logs and the recording (docs/telephony.md#collect-digits).
* ``send_digits(digits)`` — keys pressed towards the far end (an IVR an outbound call reached),
  through the carrier (docs/telephony.md#sending-digits).

Agents enable them by name in ``tools:`` (``agents.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from switchboard.errors import ToolError
from switchboard.tools.context import ToolContext
from switchboard.tools.registry import ToolRegistry, tool

__all__ = [
    "BUILTIN_TOOLS",
    "builtin_registry",
    "collect_digits",
    "end_call",
    "send_digits",
    "transfer_call",
]

#: Seconds the goodbye may take to play before the invocation is abandoned.
CALL_CONTROL_TIMEOUT_S = 30.0


@tool(timeout_s=CALL_CONTROL_TIMEOUT_S)
async def end_call(
    context: ToolContext,
    goodbye: Annotated[
        str, Field(description="What to say to the caller before hanging up.")
    ] = "Goodbye!",
) -> str:
    """End the phone call, after saying goodbye, when the conversation is finished."""
    await context.control.hang_up(goodbye=goodbye)
    return "call ended"


#: The longest a warm transfer may take: ringing (at most 60 s), the briefing, the join.
WARM_TRANSFER_TIMEOUT_S = 150.0


@tool(timeout_s=WARM_TRANSFER_TIMEOUT_S)
async def transfer_call(
    context: ToolContext,
    destination: Annotated[
        str,
        Field(
            description=(
                "Where to transfer: a name from your directory (such as 'billing'), or a phone "
                "number in E.164 form (+15551234567) or SIP URI you were given."
            ),
            min_length=3,
        ),
    ],
    mode: Annotated[
        Literal["cold", "warm"],
        Field(
            description=(
                "'cold' hands the caller over at once; 'warm' holds the caller, calls the "
                "destination, briefs whoever answers and then connects them (if nobody answers "
                "the caller stays with you)."
            )
        ),
    ] = "cold",
    summary: Annotated[
        str | None,
        Field(
            description="For a warm transfer: one or two sentences on who is calling and why.",
            max_length=400,
        ),
    ] = None,
) -> str:
    """Transfer the caller to another phone number or SIP address."""
    if mode == "warm":
        return await context.control.warm_transfer(destination, summary=summary)
    await context.control.transfer(destination)
    return f"transferring to {destination}"


#: The longest a caller may take per key in ``collect_digits`` (seconds).
MAX_DIGIT_WAIT_S = 60.0


@tool(timeout_s=4 * MAX_DIGIT_WAIT_S)
async def collect_digits(
    context: ToolContext,
    prompt: Annotated[
        str | None,
        Field(description="What to ask the caller to key in (spoken before collecting)."),
    ] = None,
    max_digits: Annotated[int, Field(ge=1, le=32, description="Stop after this many keys.")] = 16,
    finish_on_key: Annotated[
        str, Field(pattern=r"^[#*]?$", description="The key that ends the input ('#').")
    ] = "#",
    timeout_s: Annotated[
        float, Field(ge=0.5, le=MAX_DIGIT_WAIT_S, description="Seconds to wait for each key.")
    ] = 8.0,
    redact: Annotated[
        bool,
        Field(description="Keep the digits secret (PINs, card numbers): you get only a count."),
    ] = False,
) -> dict[str, Any]:
    """Collect digits the caller types on the phone keypad (an account number, a PIN)."""
    if context.keypad is None:
        raise ToolError("no caller keypad on this call")
    got = await context.keypad.collect(
        prompt=prompt,
        max_digits=max_digits,
        finish_on_key=finish_on_key,
        timeout_s=timeout_s,
        redact=redact,
    )
    if redact:  # not even the count: a PIN's length is a hint too
        context.variables["collected_digits"] = got.digits
        return {
            "digits": "****",
            "redacted": True,
            "received": bool(got.digits),
            "ended_by": got.ended_by,
        }
    return {"digits": got.digits, "ended_by": got.ended_by}


@tool(timeout_s=CALL_CONTROL_TIMEOUT_S)
async def send_digits(
    context: ToolContext,
    digits: Annotated[
        str,
        Field(
            pattern=r"^[0-9*#A-Dw]{1,32}$",
            description="Keys to press: 0-9, * and #; w waits half a second.",
        ),
    ],
) -> str:
    """Press keys on the phone keypad, to navigate an automated phone menu you called."""
    if context.keypad is None:
        raise ToolError("no keypad on this call")
    await context.keypad.send(digits)
    return f"pressed {' '.join(digits)}"


#: The built-in tool functions, by name.
BUILTIN_TOOLS: dict[str, Callable[..., Any]] = {
    "end_call": end_call,
    "transfer_call": transfer_call,
    "collect_digits": collect_digits,
    "send_digits": send_digits,
}


def builtin_registry() -> ToolRegistry:
    """A fresh registry holding every built-in tool (``end_call``, ``transfer_call``,
    ``collect_digits``)."""
    return ToolRegistry(BUILTIN_TOOLS.values())
