"""Decision counters and a latency window for `status`: O(1) to record on the hot path, sorted only when read."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from keycardd.engine import Outcome

LATENCY_WINDOW = 8192


class DecisionStats:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {outcome.value: 0 for outcome in Outcome}
        self.by_agent: dict[str, dict[str, int]] = {}
        """{agent: {outcome: count}}: one daemon guards every agent, and `status` says how each is doing."""
        self._latencies_us: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def record(self, outcome: Outcome, latency_us: float, agent: str = "") -> None:
        self.counts[outcome.value] += 1
        if agent:
            per_agent = self.by_agent.setdefault(agent, {})
            per_agent[outcome.value] = per_agent.get(outcome.value, 0) + 1
        self._latencies_us.append(latency_us)

    def drain(self) -> tuple[dict[str, int], list[float]]:
        """The counts and latencies recorded since the last drain, and reset (a replica reporting to its primary).
        Per-agent counts travel in the same map as `agent/outcome` keys, so the report's shape is unchanged."""
        counts = {key: value for key, value in self.counts.items() if value}
        for agent, outcomes in self.by_agent.items():
            counts.update({f"{agent}/{outcome}": value for outcome, value in outcomes.items()})
        self.counts = dict.fromkeys(self.counts, 0)
        self.by_agent = {}
        latencies = list(self._latencies_us)
        self._latencies_us.clear()
        return counts, latencies

    def merge(self, counts: dict[str, int], latencies_us: list[float]) -> None:
        """Add a replica's report (unknown outcome names are ignored)."""
        for key, value in counts.items():
            agent, _, outcome = key.rpartition("/")
            if outcome not in self.counts:
                continue
            if agent:
                per_agent = self.by_agent.setdefault(agent, {})
                per_agent[outcome] = per_agent.get(outcome, 0) + value
            else:
                self.counts[key] += value
        self._latencies_us.extend(latencies_us)

    def latency(self) -> dict[str, float | None]:
        """p50 and p99 of the last `LATENCY_WINDOW` decisions, in microseconds (None before the first)."""
        return latency_summary(self._latencies_us)


def latency_summary(samples_us: Iterable[float]) -> dict[str, float | None]:
    """p50 and p99 in microseconds (None without samples)."""
    samples = sorted(samples_us)
    if not samples:
        return {"p50": None, "p99": None}
    return {"p50": round(_percentile(samples, 0.50), 1), "p99": round(_percentile(samples, 0.99), 1)}


def _percentile(sorted_samples: list[float], fraction: float) -> float:
    index = min(len(sorted_samples) - 1, int(fraction * len(sorted_samples)))
    return sorted_samples[index]
