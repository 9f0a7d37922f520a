r"""The CPU cost of the live view (``hlai run --view``) on the graph's control rate.

    flock /tmp/hlai_cpu.lock env OMP_NUM_THREADS=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \\
        .venv/bin/python benchmarks/bench_view.py --task cliff --episodes 3 --rounds 2

Runs ``hlai run --task TASK --episodes N`` (lockstep, the learned actor, the same seeds) without
and with ``--view`` (the view node and its rerun web server on 127.0.0.1), alternating, in one
invocation, ``--rounds`` times each. Lockstep runs the loop as fast as the machine allows, so the
view's CPU shows as a lower control rate. Per run:

- control rate: control steps per wall-clock second between the end of the first episode and
  the end of the last (start-up excluded), from the time each episode's line is printed;
- CPU: user + system seconds of the whole graph (every node, the rerun server included;
  ``RUSAGE_CHILDREN``), per control step.

The ratio with/without view is the median over rounds. Each run claims its own ROS_DOMAIN_ID.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time

from bench_ros import claim_domain  # the benchmarks folder is on sys.path for a script

EPISODE = re.compile(r'^episode (\d+) \(seed \d+\): .*?, (\d+) steps')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_once(task: str, episodes: int, seed: int, view: bool, max_steps: int) -> dict:
    """One ``hlai run``; return its control rate and CPU."""
    domain, lock = claim_domain(offset=53)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    out = Path(tempfile.mkdtemp(prefix='bench_view_'))
    cmd = [sys.executable, '-m', 'hlai_ros.cli', 'run', '--task', task, '--episodes',
           str(episodes), '--seed', str(seed), '--out', str(out), '--json']
    if max_steps:
        cmd += ['--set', f'sim.max_steps={max_steps}']
    if view:
        cmd += ['--view', '--set', f'view.grpc_port={_free_port()}',
                '--set', f'view.web_port={_free_port()}']
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    ends, steps = [], []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    summary = {}
    for line in proc.stdout:
        found = EPISODE.match(line)
        if found:
            ends.append(time.monotonic())
            steps.append(int(found[2]))
        elif line.startswith('{'):
            summary = json.loads(line)
    proc.wait()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lock.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rate = sum(steps[1:]) / (ends[-1] - ends[0]) if len(ends) > 1 else float('nan')
    return {'view': view, 'exit': proc.returncode, 'episodes': len(steps), 'steps': steps,
            'success_rate': summary.get('success_rate'), 'wall_s': round(wall, 1),
            'control_rate_hz': round(rate, 2), 'cpu_s': round(cpu, 1),
            'cpu_ms_per_step': round(1e3 * cpu / max(sum(steps), 1), 1)}


def main() -> int:
    """Run the benchmark; print one JSON line per run and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', default='cliff')
    parser.add_argument('--episodes', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--max-steps', type=int, default=0,
                        help='cut episodes at this many steps (0: the task limit)')
    args = parser.parse_args()
    runs = []
    for _ in range(args.rounds):
        for view in (False, True):
            runs.append(run_once(args.task, args.episodes, args.seed, view, args.max_steps))
            print(json.dumps(runs[-1]), flush=True)

    def median(values):
        values = sorted(values)
        return values[len(values) // 2] if len(values) % 2 else sum(
            values[len(values) // 2 - 1:len(values) // 2 + 1]) / 2
    ratios = [b['control_rate_hz'] / a['control_rate_hz']
              for a, b in zip(runs[::2], runs[1::2])]
    cpu = [b['cpu_ms_per_step'] / a['cpu_ms_per_step'] for a, b in zip(runs[::2], runs[1::2])]
    print(json.dumps({'control_rate_ratio_view_over_plain': round(median(ratios), 3),
                      'per_round_rate_ratios': [round(r, 3) for r in ratios],
                      'cpu_per_step_ratio_view_over_plain': round(median(cpu), 3)}))
    return 0 if all(r['exit'] == 0 for r in runs) else 1


if __name__ == '__main__':
    sys.exit(main())
