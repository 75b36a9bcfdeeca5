"""Load benchmarks of the API (``python -m bench.api_bench``; see bench/README.md)."""
