"""What every fuzz target shares: splitting one fuzzer input into frames, and the run loop.

A target's input is several frames separated by NUL bytes (a WebSocket text frame is UTF-8, so
the bytes are decoded with replacement characters). The seed corpus (``fuzz/run.py`` writes it
from ``tests/fixtures``) uses the same form, so libFuzzer starts from real messages and mutates
them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

__all__ = ["frames", "run"]


def frames(data: bytes) -> list[str]:
    """The text frames in ``data`` (NUL-separated, UTF-8 with replacement characters)."""
    return [part.decode("utf-8", "replace") for part in data.split(b"\x00")]


def run(test_one_input: Callable[[bytes], None]) -> None:
    """Hand ``test_one_input`` to libFuzzer with this process's command line."""
    import atheris

    logging.disable(logging.CRITICAL)  # parsers log every malformed frame: far slower than parsing
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
