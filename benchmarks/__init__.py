"""Speed measurements of the suite (``python -m benchmarks.samplers``); results in ``benchmarks/results/``."""
