"""Build hook for the optional C accelerators (everything else: pyproject): the G.711 codecs
and the integer-ratio FIR resampler.

``optional=True``: on a machine without a C compiler the build still succeeds;
``switchboard.audio.g711`` falls back to its numpy tables (bit-exact) and
``switchboard.audio.fir`` to numpy's convolutions (the same sums), each slower per 20 ms frame.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("switchboard.audio._g711", ["src/switchboard/audio/_g711.c"], optional=True),
        Extension("switchboard.audio._fir", ["src/switchboard/audio/_fir.c"], optional=True),
    ]
)
