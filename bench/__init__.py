"""Benchmarks of the billing service: `python -m bench [name ...]` (or `make bench`).

Every module of this package whose name does not start with `_` (and is not `settings`,
`urls` or `views`) is a benchmark if it has `run() -> list[Result]`. To add one, create
`bench/<name>.py` with such a `run`; `bench._harness` has the shared pieces (a gunicorn
server of the project, an HTTP load generator). Django is set up before `run` is called.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

NOT_BENCHMARKS = frozenset({"settings", "urls", "views"})


@dataclass
class Result:
    """One target of one benchmark. `rps` counts successful answers only."""

    benchmark: str
    target: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    # The target this one is compared with, in the same benchmark, and rps / its rps.
    baseline: str | None = None
    ratio: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def benchmark_names() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_") and info.name not in NOT_BENCHMARKS
    )


def load_benchmarks(names: list[str] | None = None) -> list[ModuleType]:
    available = benchmark_names()
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {available}")
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names or available]
    return [module for module in modules if callable(getattr(module, "run", None))]


def format_table(results: list[Result]) -> str:
    headers = ("benchmark", "target", "requests", "req/s", "p50 ms", "p99 ms", "errors")
    rows = [
        (
            r.benchmark,
            r.target,
            str(r.requests),
            f"{r.rps:.1f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            str(r.errors),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells) -> str:
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    out = [line(headers), rule, *(line(row) for row in rows)]
    by_target = {(r.benchmark, r.target): r for r in results}
    for r in results:
        if r.baseline is not None and r.ratio is not None:
            line_ = f"ratio {r.target}/{r.baseline} = {r.ratio:.2f}   ({r.benchmark})"
            baseline = by_target.get((r.benchmark, r.baseline))
            if r.errors or (baseline is not None and baseline.errors):
                line_ += "   !!! INVALID: failed requests"
            out.append(line_)
    return "\n".join(out)


@dataclass(frozen=True)
class Aim:
    """What issue 16 asks of one figure: a ratio to its baseline (`min_ratio`), an absolute
    rate (`min_rps`), a latency (`max_p99_ms`); any of them."""

    benchmark: str
    target: str
    figure: str
    min_ratio: float | None = None
    min_rps: float | None = None
    max_p99_ms: float | None = None


AIMS = (
    Aim("billing", "billing-run", "billing run, 1 process", min_ratio=0.15, min_rps=300),
    Aim("billing", "billing-run-1w", "billing run, 1 worker process", min_ratio=0.15),
    Aim("billing", "billing-run-2w", "billing run, 2 worker processes", min_ratio=0.15),
    Aim("usage", "single-full", "one usage event through the API", min_ratio=0.7),
    Aim("usage", "batch-full", "usage batches through the API", min_ratio=0.6),
    Aim("usage", "aggregate", "period aggregate at 10M events", max_p99_ms=20),
    Aim("usage", "buckets", "period aggregate, filters and group keys", max_p99_ms=20),
    Aim("customers", "full", "customer create through the stack", min_ratio=0.6),
    Aim("webhooks", "full", "webhook intake (verify, store, enqueue)", min_ratio=0.8),
    Aim("dashboard", "dashboard", "dashboard at 100,000 invoices"),
)


def _aim_text(aim: Aim) -> str:
    parts = []
    if aim.min_ratio is not None:
        parts.append(f">= {aim.min_ratio:g}x")
    if aim.min_rps is not None:
        parts.append(f">= {aim.min_rps:g}/s")
    if aim.max_p99_ms is not None:
        parts.append(f"p99 < {aim.max_p99_ms:g} ms")
    return ", ".join(parts) or "(none)"


def _met(aim: Aim, result: Result) -> str:
    if result.errors:
        return "INVALID"
    checks = []
    if aim.min_ratio is not None:
        checks.append(result.ratio is not None and result.ratio >= aim.min_ratio)
    if aim.min_rps is not None:
        checks.append(result.rps >= aim.min_rps)
    if aim.max_p99_ms is not None:
        checks.append(result.p99_ms < aim.max_p99_ms)
    return "" if not checks else ("yes" if all(checks) else "NO")


def summary_rows(results: list[Result]) -> list[tuple[str, ...]]:
    """One row per aimed-at figure that was measured: figure, rate, p50, p99, ratio to its
    baseline, the aim, met."""
    by_target = {(r.benchmark, r.target): r for r in results}
    rows = []
    for aim in AIMS:
        result = by_target.get((aim.benchmark, aim.target))
        if result is None:
            continue
        ratio = (
            f"{result.ratio:.3f} ({result.target}/{result.baseline})"
            if result.ratio is not None
            else ""
        )
        rows.append(
            (
                aim.figure,
                f"{result.rps:,.1f}" if result.rps else "",
                f"{result.p50_ms:.2f}" if result.p50_ms else "",
                f"{result.p99_ms:.2f}" if result.p99_ms else "",
                ratio,
                _aim_text(aim),
                _met(aim, result),
            )
        )
    return rows


SUMMARY_HEADERS = ("figure", "rate /s", "p50 ms", "p99 ms", "ratio", "aim", "met")


def format_summary(results: list[Result]) -> str:
    rows = summary_rows(results)
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in [SUMMARY_HEADERS, *rows]) for i in range(7)]
    out = ["  ".join(h.ljust(w) for h, w in zip(SUMMARY_HEADERS, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def markdown_summary(results: list[Result], note: str) -> str:
    """The summary as the README's table (`python -m bench --readme` writes it there)."""
    lines = [
        "| " + " | ".join(SUMMARY_HEADERS) + " |",
        "|" + "---|" * len(SUMMARY_HEADERS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results)]
    return "\n".join([*lines, "", note])
