"""Reading the broker's Prometheus endpoint: the workers' policy versions (for
`RolloutClient.wait_for_workers`) and the acceptance figures `rollspec metrics` prints (the
Swift side is Sources/RollspecClient/Metrics/MetricsQuery.swift)."""
from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field
from typing import Optional

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Families:
    """The samples of one scrape: (name, labels dict, value)."""

    def __init__(self, samples: list):
        self.samples = samples

    def value(self, name: str) -> Optional[float]:
        """The value of the unlabelled series `name`, or None."""
        return next((v for n, labels, v in self.samples if n == name and not labels), None)

    def by_label(self, name: str, label: str) -> dict:
        return {labels[label]: v for n, labels, v in self.samples if n == name and label in labels}


def parse(text: str) -> Families:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL.findall(m.group(2) or "")}
        samples.append((m.group(1), labels, float(m.group(3))))
    return Families(samples)


def scrape(url: str, timeout: float = 10.0) -> Families:
    """Raises OSError (URLError) when the endpoint cannot be read."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return parse(response.read().decode("utf-8"))


@dataclass
class AcceptanceRow:
    """Acceptance counts for one value of the grouping label. Rates are derived: the acceptance
    rate is accepted / drafted tokens; the mean acceptance length counts the bonus token
    (1 + accepted / drafts); per_position[i] is the share of drafts whose first i+1 tokens were
    all accepted."""
    key: str
    drafts: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    accepted_per_position: list = field(default_factory=list)
    generated_tokens: Optional[int] = None
    generation_seconds: Optional[float] = None
    requests: Optional[int] = None

    @property
    def acceptance_rate(self) -> Optional[float]:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else None

    @property
    def mean_acceptance_length(self) -> Optional[float]:
        return 1 + self.accepted_tokens / self.drafts if self.drafts else None

    @property
    def per_position(self) -> list:
        return [n / self.drafts for n in self.accepted_per_position] if self.drafts else []

    @property
    def tokens_per_second(self) -> Optional[float]:
        if self.generated_tokens is None or not self.generation_seconds:
            return None
        return self.generated_tokens / self.generation_seconds


GROUPINGS = ("policy_version", "draft_version", "worker", "proposer")


def rows(families: Families, by: str = "policy_version"):
    """(rows sorted by key, total) summed from the workers' counters."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    table, total = {}, AcceptanceRow("total")

    def add(row: AcceptanceRow, name: str, labels: dict, v: float):
        n = int(round(v))
        if name == "rollspec_spec_decode_drafts_total":
            row.drafts += n
        elif name == "rollspec_spec_decode_draft_tokens_total":
            row.drafted_tokens += n
        elif name == "rollspec_spec_decode_accepted_tokens_total":
            row.accepted_tokens += n
        elif name == "rollspec_spec_decode_accepted_tokens_per_position_total":
            p = int(labels.get("position", "0"))
            if 1 <= p <= 4096:
                row.accepted_per_position += [0] * (p - len(row.accepted_per_position))
                row.accepted_per_position[p - 1] += n
        elif name == "rollspec_generated_tokens_total":
            row.generated_tokens = (row.generated_tokens or 0) + n
        elif name == "rollspec_generation_requests_total":
            row.requests = (row.requests or 0) + n
        elif name == "rollspec_generation_seconds_total":
            row.generation_seconds = (row.generation_seconds or 0) + v

    for name, labels, v in families.samples:
        if v != v or v in (float("inf"), float("-inf")):
            continue
        add(total, name, labels, v)
        if by in labels:
            key = labels[by]
            add(table.setdefault(key, AcceptanceRow(key)), name, labels, v)
    ordered = sorted(table.values(), key=lambda r: (0, int(r.key), "") if r.key.isdigit() else (1, 0, r.key))
    return ordered, total


def acceptance(url: str, by: str = "policy_version"):
    return rows(scrape(url), by)
