"""keycardd benchmarks: `python -m bench [NAME ...]` runs `bench/bench_<NAME>.py` modules into results.json."""
