"""Build hook for the optional C accelerator of the G.711 codecs (everything else: pyproject).

``optional=True``: on a machine without a C compiler the build still succeeds and
``switchboard.audio.g711`` falls back to its numpy tables (bit-exact, slower per 20 ms frame).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("switchboard.audio._g711", ["src/switchboard/audio/_g711.c"], optional=True)
    ]
)
