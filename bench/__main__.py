"""`python -m bench [name ...]`: run every benchmark of this package (or the named ones),
then print one summary table. Exits 1 if any request failed or any benchmark crashed."""

import os
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


def main(argv: list[str]) -> int:
    import django

    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    django.setup()

    from bench import Result, format_table, load_benchmarks
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
    print(
        f"\n({time.monotonic() - started:.0f}s in all; req/s counts successful answers only; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after: other work on the machine skews every figure)"
    )
    failed = [f"{r.benchmark}/{r.target}" for r in results if r.errors]
    if failed:
        print(f"\n!!! FAILED REQUESTS in {', '.join(failed)}: these figures are not valid.")
    if crashed:
        print(f"\n!!! CRASHED: {', '.join(crashed)}")
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
