"""GridLoop benchmarks: run `python -m bench.run --help`."""
