"""Inputs from a generator, at scale: the parsers' property-based tests (tests/reliability/test_fuzz.py) with the
``bench`` profile, 1,000 generated inputs each (the default suite runs 60).

    python -m bench.fuzz [--examples 1000]

Prints, per parser, how many inputs were generated (each accepted or refused with one line; written to
``bench/results/fuzz.json``); any input that raised
anything but a one-line NasError fails its test (and is printed, shrunk, with the traceback). Goal (issue 32): 0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from bench._harness import RESULTS, ROOT, goal_line, write_result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000)
    a = ap.parse_args()
    env = {**os.environ, "NAS_FUZZ_PROFILE": "bench", "NAS_FUZZ_EXAMPLES": str(a.examples)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
                           str(ROOT / "tests" / "reliability" / "test_fuzz.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    out = proc.stdout
    current, total, per = None, 0, {}
    for line in out.splitlines():
        m = re.match(r"tests/reliability/test_fuzz.py::(\S+):", line.strip())
        if m:
            current = m.group(1)
        m = re.search(r"- (\d+) passing, (\d+) failing, and (\d+) invalid", line)
        if m and current:
            passing, failing, _ = map(int, m.groups())
            total += passing + failing
            per[current] = {"inputs": passing + failing, "failing": failing}
            print(f"  {current:<48} {passing + failing:6d} inputs, {failing} failing")
    tail = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln]
    print(tail[-1] if tail else out[-2000:])
    print(goal_line(proc.returncode == 0, f"{total} generated inputs, every one accepted or refused with one line"))
    write_result(RESULTS / "fuzz.json", {"examples": a.examples, "inputs": total, "parsers": per,
                                         "failing": sum(v["failing"] for v in per.values()), "passed": proc.returncode == 0})
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
