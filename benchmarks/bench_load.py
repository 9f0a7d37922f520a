"""Plan time with 1 and 2 torch threads, alone and beside a competing CPU load (issue 14).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_load.py --task cliff push --busy 2

Runs `benchmarks/bench_plan_latency.py` (the shipped stack, one process per setting) with each
thread count, first alone and then beside `--busy` processes that spin on the CPU (pure Python
loops, as other nodes or jobs would), in turns, and prints each setting's plan p50 / p90 and its
slow-down under load against the same thread count alone. Run it on an otherwise quiet machine:
"alone" must mean alone.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
from pathlib import Path
import re
import subprocess
import sys
import time

ROW = re.compile(r'^\|\s*(\w+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|[^|]*\|\s*([\d.]+)\s*/\s*([\d.]+)')


def spin(stop_at: float) -> None:
    """Burn one core until `stop_at` (monotonic seconds)."""
    x = 0
    while time.monotonic() < stop_at:
        x += 1


def plan_times(tasks, threads: int, episodes: int, steps: int) -> dict[str, tuple[float, float]]:
    """Plan p50 and p90 (ms) per task from one bench_plan_latency run."""
    script = Path(__file__).with_name('bench_plan_latency.py')
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, str(script), '--task', *tasks, '--threads',
                          str(threads), '--episodes', str(episodes), '--steps', str(steps)],
                         capture_output=True, text=True, env=env, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m and int(m.group(2)) == threads:
            found[m.group(1)] = (float(m.group(4)), float(m.group(5)))
    if not found:
        raise SystemExit(f'no plan rows in bench_plan_latency output:\n{out}')
    return found


def main() -> None:
    """Alone and loaded, per thread count, in turns."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', nargs='+', default=['cliff', 'push'])
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--busy', type=int, default=2, help='competing busy processes')
    ap.add_argument('--episodes', type=int, default=2)
    ap.add_argument('--steps', type=int, default=25)
    args = ap.parse_args()
    rows = {}
    for threads in args.threads:
        for loaded in (False, True):
            procs = []
            if loaded:
                stop_at = time.monotonic() + 3600
                procs = [mp.Process(target=spin, args=(stop_at,), daemon=True)
                         for _ in range(args.busy)]
                for p in procs:
                    p.start()
            try:
                rows[threads, loaded] = plan_times(args.task, threads, args.episodes,
                                                   args.steps)
            finally:
                for p in procs:
                    p.terminate()
                    p.join()
    print(f'| task | torch threads | plan p50 / p90 ms alone | beside {args.busy} busy '
          'processes | slow-down of p50 |')
    print('|---|---|---|---|---|')
    for task in args.task:
        for threads in args.threads:
            a, b = rows[threads, False][task], rows[threads, True][task]
            print(f'| {task} | {threads} | {a[0]:.1f} / {a[1]:.1f} | {b[0]:.1f} / {b[1]:.1f} | '
                  f'{b[0] / a[0]:.2f}x |')


if __name__ == '__main__':
    main()
