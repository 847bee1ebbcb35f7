"""`python -m bench [--readme] [name ...]`: run every benchmark of this package (or the
named ones), then print one table of every target and one summary of every aimed-at
figure (bench.AIMS) with its ratio. `--readme` also writes that summary into README.md,
between its `bench-summary` markers. Exits 1 if any request failed or any benchmark
crashed."""

import datetime
import os
import re
import signal
import sys
import time
import traceback

# The benchmarks have settings of their own (a database of their own, the bench URLconf),
# whatever the caller's DJANGO_SETTINGS_MODULE (the Makefile sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = os.environ.get("BENCH_SETTINGS", "bench.settings")


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds the benchmarks' finally blocks, which stop their servers.
    raise SystemExit(128 + signum)


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
MARKERS = re.compile(
    r"(<!-- bench-summary:start -->\n).*?(<!-- bench-summary:end -->)", flags=re.DOTALL
)


def write_readme(summary: str) -> bool:
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    if not MARKERS.search(text):
        return False
    text = MARKERS.sub(lambda m: f"{m.group(1)}{summary}\n{m.group(2)}", text)
    with open(README, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True


def main(argv: list[str]) -> int:
    import django

    readme = "--readme" in argv
    argv = [arg for arg in argv if arg != "--readme"]

    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    django.setup()

    from bench import Result, format_summary, format_table, load_benchmarks, markdown_summary
    from bench._harness import prepare_database

    started = time.monotonic()
    load_before = os.getloadavg()
    prepare_database()
    results: list[Result] = []
    crashed: list[str] = []
    for module in load_benchmarks(argv or None):
        name = module.__name__.rpartition(".")[2]
        try:
            results.extend(module.run())
        except Exception:
            traceback.print_exc()
            crashed.append(name)

    print()
    print(format_table(results))
    load_after = os.getloadavg()
    conditions = (
        f"{time.monotonic() - started:.0f}s in all; req/s counts successful answers only; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after: other work on the machine skews every figure"
    )
    print(f"\n({conditions})")
    summary = format_summary(results)
    if summary:
        print(f"\nSummary: every aimed-at figure and its ratio to its baseline\n{summary}")
    if readme:
        names = "".join(f" {name}" for name in argv)
        note = f"`python -m bench --readme{names}` on {datetime.date.today()}: {conditions}."
        written = write_readme(markdown_summary(results, note))
        print("\nREADME.md: summary written" if written else "\nREADME.md: no markers")
    failed = [f"{r.benchmark}/{r.target}" for r in results if r.errors]
    if failed:
        print(f"\n!!! FAILED REQUESTS in {', '.join(failed)}: these figures are not valid.")
    if crashed:
        print(f"\n!!! CRASHED: {', '.join(crashed)}")
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
