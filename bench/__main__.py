"""``python -m bench [NAME ...] [--quick]`` (``make bench``): run benchmarks, print reports.

Each report sets its figures beside a baseline measured in the same run; timings never decide
pass or fail. ``--quick`` runs small sizes (a smoke test of the benchmark code itself).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from bench import ballots, flood, ledger, replay, strict, webhooks
from service.logging import configure_logging

BENCHES: dict[str, tuple[Callable[..., str], dict[str, int]]] = {
    "ledger": (ledger.run, {"single": 200, "batched": 2000, "events": 5000, "samples": 50}),
    "ballots": (ballots.run, {"requests": 400, "repeats": 1, "warmup": 100, "time_limit": 60}),
    "replay": (replay.run, {"units": 16, "cadres": 48, "events": 20_000, "runner_events": 1000,
                            "samples": 24}),
    "webhooks": (webhooks.run, {"events": 200}),
    "flood": (flood.run, {"seconds": 2, "connections": 8, "credentials": 200}),
    "strict": (strict.run, {"bodies": 200}),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHES, []][:-1] or None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configure_logging("warning")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in args.names or list(BENCHES):
        run, quick = BENCHES[name]
        print(run(**quick) if args.quick else run(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
