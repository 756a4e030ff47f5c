"""``needs_av``: tests of the PyAV codecs (Opus, MP3, G.722, audio files).

They skip, with the reason, only where PyAV is not installed; with ``CI=true`` they always run,
so a CI image without the ``codecs`` extra fails instead of passing silently.
"""

from __future__ import annotations

import os

import pytest

from switchboard.audio import AV_AVAILABLE

IN_CI = os.environ.get("CI", "").lower() == "true"

needs_av = pytest.mark.skipif(
    not AV_AVAILABLE and not IN_CI,
    reason="PyAV is not installed: pip install 'switchboard-voice[codecs]' (CI=true runs these)",
)
