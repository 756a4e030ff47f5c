"""``needs_av`` / ``needs_libopus``: tests of the optional codecs (Opus, MP3, G.722, files).

``needs_av`` marks tests of the PyAV codecs; ``needs_libopus`` tests of Opus through libopus
called directly (PyAV's bundled copy or the system's ``libopus0``). They skip, with the reason,
only where the library is missing; with ``CI=true`` they always run, so a CI image without the
``codecs`` extra fails instead of passing silently.
"""

from __future__ import annotations

import os

import pytest

from switchboard.audio import AV_AVAILABLE
from switchboard.audio._libopus import load_libopus

IN_CI = os.environ.get("CI", "").lower() == "true"

needs_av = pytest.mark.skipif(
    not AV_AVAILABLE and not IN_CI,
    reason="PyAV is not installed: pip install 'switchboard-voice[codecs]' (CI=true runs these)",
)

needs_libopus = pytest.mark.skipif(
    load_libopus() is None and not IN_CI,
    reason="no libopus to load: pip install 'switchboard-voice[codecs]' or apt install libopus0",
)

#: Each Opus backend as a pytest param, marked with what it needs.
OPUS_BACKENDS = [
    pytest.param("libopus", marks=needs_libopus, id="libopus"),
    pytest.param("pyav", marks=needs_av, id="pyav"),
]
