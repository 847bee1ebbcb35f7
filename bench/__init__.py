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
