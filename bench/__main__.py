"""``python -m bench [--quick] [--out DIR] [--only big,trees,state] [--peak-gbs N] [--profile]``: run, write."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

from bench import _bigleaf, _profile, _report, _state, _trees
from bench._timing import copy_bandwidth

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("big", "trees", "state")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny cases, one round: checks that it runs")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {RESULTS})")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts among {PARTS}")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 4 big leaf, 2 trees)")
    parser.add_argument("--big-params", type=int, default=50 * 2**20, help="parameters in the large leaf")
    parser.add_argument(
        "--peak-gbs",
        type=float,
        default=None,
        help="the device's nominal memory bandwidth in GB/s (e.g. 4800 for an H200): the large-leaf rows then also "
        "give the fraction of it each step reaches",
    )
    parser.add_argument("--profile", action="store_true", help="only print where tracing a 2,000-leaf step spends time")
    args = parser.parse_args(argv)
    # A persistent compilation cache (JAX_COMPILATION_CACHE_DIR) would turn later rounds' compiles
    # into cache hits, and only those over a second: for one library and not the other.
    jax.config.update("jax_enable_compilation_cache", False)
    if args.profile:
        _profile.run(args.quick)
        return {}
    if args.peak_gbs is not None and not args.peak_gbs > 0:
        parser.error(f"--peak-gbs must be a positive number of GB/s, got {args.peak_gbs}")
    parts = set(args.only.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose among {PARTS}")
    quick = args.quick
    n_big = 2**16 if quick else args.big_params
    # Even round counts: each library goes first equally often (lib_order alternates).
    big_rounds = args.rounds or (1 if quick else 4)
    tree_rounds = args.rounds or (1 if quick else 2)
    start = time.perf_counter()
    record: dict = {"quick": quick, "machine": _report.machine(), "big_leaf": [], "trees": [], "state": []}
    bandwidth = copy_bandwidth(n_big, repeats=3 if quick else 10)
    record["copy_bandwidth_gbs"] = bandwidth / 1e9
    record["peak_bandwidth_gbs"] = args.peak_gbs
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s over {n_big * 4 / 2**20:.0f} MiB", flush=True)
    if "big" in parts:
        peak = None if args.peak_gbs is None else args.peak_gbs * 1e9
        record["big_leaf"] = _bigleaf.run(n_big, big_rounds, steps=2 if quick else 5, bandwidth=bandwidth, peak=peak)
        # Measured again after the cases: a drift in load shows as a change here.
        record["copy_bandwidth_after_gbs"] = copy_bandwidth(n_big, repeats=3 if quick else 10) / 1e9
    if "trees" in parts:
        record["trees"] = _trees.run(quick, tree_rounds, steps=2 if quick else 20)
    if "state" in parts:
        record["state"] = _state.run(quick)
    record["wall_s"] = time.perf_counter() - start
    out = args.out or RESULTS
    paths = _report.write(record, out, "quick" if quick else "latest")
    print()
    print(_report.markdown(record))
    print("wrote " + ", ".join(str(p) for p in paths))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
