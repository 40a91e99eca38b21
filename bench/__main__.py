"""Run the benchmarks and write `bench/results.json`.

Each `bench/bench_<name>.py` exposes `run() -> dict`; its result is stored under `<name>`, next to the machine
facts of the run, so figures from one run can be compared with each other (the machines are noisy: compare
medians and ratios measured in the same run, not across runs).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def main(argv: list[str]) -> int:
    available = sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))
    selected = argv or available
    unknown = set(selected) - set(available)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; available: {', '.join(available)}")
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() and argv else {}
    results["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
    }
    failed = False
    for name in selected:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            results[name] = module.run()
        except Exception:
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc(limit=3)}
            failed = True
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(results[name], indent=2), flush=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
