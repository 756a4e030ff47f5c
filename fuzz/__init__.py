"""Coverage-guided fuzz targets (atheris, libFuzzer): ``make fuzz``; docs/security.md."""
