"""Reproducible benchmarks; ``python -m benchmarks`` prints one JSON list of figures."""
