"""Baseline for benches/canon_diff.rs: Python's deepdiff on the same bot pairs.

Usage: python3 benches/deepdiff_baseline.py PAIRS.jsonl   (pip install deepdiff)
Each pair is parsed from JSON and compared with DeepDiff(ignore_order=True), the
closest deepdiff gets to order-free sets; it knows nothing of schemas, so it
reports defaults, ignored fields and `12` vs `12.0` differently from us.
"""
import json
import sys
import time

try:
    from deepdiff import DeepDiff
except ImportError:
    sys.exit("deepdiff is not installed (pip install deepdiff)")

lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    for line in lines:
        pair = json.loads(line)
        DeepDiff(pair["running"], pair["committed"], ignore_order=True)
    best = min(best, time.perf_counter() - started)
print(f"deepdiff: {len(lines)} pairs in {best:.3f} s = {len(lines) / best:.0f} pairs/s (best of 3)")
