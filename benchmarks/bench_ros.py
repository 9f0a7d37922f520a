r"""The ROS graph with the learned actor: success, latency, control rate and CPU per node.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_ros.py \\
        --task TASK --episodes 10 --seconds 20

Three parts, each on the graph of `hlai_ros.graph` started as separate processes (as
``hlai run`` does), with the ``mpc_actor`` (``--controller mpc``, default) or the privileged
scripted baseline closing the loop:

- success through the ROS graph against the pure-Python loop (`hlai_ros.tasks.evaluate`, the
  same learned stack, `hlai_ros.tasks.compare.make_controller`) on the same seeds
  (``--episodes``; 0 skips it), lockstep;
- timing in each ``--modes`` (default lockstep and realtime): a probe node in this process
  timestamps, on one wall clock (``time.monotonic``), every colour image, every
  ``/hlai/state`` and every command it receives.

  * sensor-to-command latency: from an image's arrival to the arrival of the first command
    after it (p50, p99). Exact in lockstep, where each image gets exactly one answer before
    the next image exists; in realtime a plan slower than the camera makes the first command
    after an image the answer to an older one, so it reads low there;
  * perception's own path, image to state, frame by frame (the estimated pose carries the
    image's stamp), with the share of frames estimated;
  * achieved control rate: control steps per wall-clock second (images less the first image
    of each new episode), against ``control_hz * real_time_factor`` in realtime; in lockstep
    the steps per second the loop sustains;
  * CPU per node: user + system time from /proc over the window, in % of one core;
  * the actor's own plan time and deadline misses from its ``/diagnostics``.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

from hlai_ros.tasks.registry import task_argument

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def claim_domain(offset: int = 0) -> tuple[int, object]:
    """Claim a free ROS_DOMAIN_ID with the tests' lock files (so a run never shares one).

    The search starts at (pid + offset) % 100; returns the domain and its lock's handle (keep
    it open while the domain is in use).
    """
    for k in range(100):
        domain = 1 + (os.getpid() + offset + k) % 100
        handle = open(f'/tmp/hlai_ros_domain_{domain}.lock', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return domain, handle
        except OSError:
            handle.close()
    raise RuntimeError('no free ROS_DOMAIN_ID')


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of a process (and its waited-for children)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / ticks


def compare_success(task: str, episodes: int, seed: int, controller: str) -> dict:
    """Success of the same seeds through the ROS graph (hlai run) and the pure-Python loop."""
    import torch

    from hlai_ros.evaluation.statistics import rate_interval
    from hlai_ros.tasks.compare import CompareConfig, make_controller
    from hlai_ros.tasks.evaluate import evaluate

    start = time.monotonic()
    run = subprocess.run([sys.executable, '-m', 'hlai_ros.cli', 'run', '--task', task,
                          '--episodes', str(episodes), '--seed', str(seed), '--controller',
                          controller, '--json', '--out', 'out/bench_ros'],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f'hlai run failed:\n{run.stderr[-3000:]}')
    graph = json.loads(run.stdout.strip().splitlines()[-1])
    graph_s = time.monotonic() - start
    torch.set_num_threads(1)
    seeds = range(seed, seed + episodes)
    if controller == 'mpc':
        # the planner of config/<task>.yaml, which the graph's mpc_actor is given too
        python_controller = make_controller('learned', CompareConfig(task=task, device='cpu'))
    else:
        python_controller = make_controller('scripted', CompareConfig(task=task, seed=seed))
    start = time.monotonic()
    python = evaluate(task, python_controller, seeds, progress=True)
    python_s = time.monotonic() - start
    g_ok = [bool(o['success']) for o in graph['outcomes']]
    p_ok = [o.success for o in python]
    return {
        'seeds': [seed, seed + episodes - 1],
        'graph': {'success_rate': float(np.mean(g_ok)),
                  'interval95': list(rate_interval(sum(g_ok), len(g_ok)))[1:],
                  'failure_rate': graph['failure_rate'], 'wall_s': round(graph_s, 1),
                  'steps': [o['steps'] for o in graph['outcomes']]},
        'python': {'success_rate': float(np.mean(p_ok)),
                   'interval95': list(rate_interval(sum(p_ok), len(p_ok)))[1:],
                   'failure_rate': float(np.mean([o.failure_reason is not None for o in python])),
                   'wall_s': round(python_s, 1), 'steps': [o.steps for o in python]},
        'same_outcome': float(np.mean([a == b for a, b in zip(g_ok, p_ok)])),
        'same_steps': float(np.mean([o['steps'] == p.steps
                                     for o, p in zip(graph['outcomes'], python)])),
    }


def measure_graph(task: str, mode: str, controller: str, seconds: float,
                  warmup: float) -> dict:
    """Run the graph in `mode`; return latency, rate, CPU and plan-time figures."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray, String

    from hlai_ros.config import load_params
    from hlai_ros.contract import CAMERA_RGB, DIAGNOSTICS, EPISODE, STATE
    from hlai_ros.graph import GraphOptions, build, params_file
    from hlai_ros.nodes.convert import message_class, stamp_ns
    from hlai_ros.runner import GraphProcesses
    from hlai_ros.tasks import get_task

    rclpy.init()
    probe = Node('bench_probe')
    events = {'image': [], 'state': [], 'command': [], 'start': []}
    arrivals = {'image': {}, 'pose': {}}  # header stamp (ns) -> arrival time
    actor = {}
    now = time.monotonic

    def on_image(msg):
        events['image'].append(now())
        arrivals['image'][stamp_ns(msg.header.stamp)] = events['image'][-1]

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.startswith('mpc_actor'):
                actor.update({kv.key: kv.value for kv in status.values})

    probe.create_subscription(Image, CAMERA_RGB.name, on_image, 100)
    probe.create_subscription(Float32MultiArray, STATE.name,
                              lambda m: events['state'].append(now()), 100)
    probe.create_subscription(
        PoseStamped, get_task(task).pose_topic.name,
        lambda m: arrivals['pose'].__setitem__(stamp_ns(m.header.stamp), now()), 100)
    probe.create_subscription(String, EPISODE.name, lambda m: events['start'].append(now())
                              if '"start"' in m.data else None, 100)
    probe.create_subscription(DiagnosticArray, DIAGNOSTICS.name, on_diagnostics, 100)
    command = get_task(task).embodiment.command
    probe.create_subscription(message_class(command.msgtype), command.name,
                              lambda m: events['command'].append(now()), 100)

    specs = build(GraphOptions(task=task, mode=mode, controller=controller,
                               extra_nodes=('bench_probe',)))
    graph = GraphProcesses(specs, params_file(task), False,
                           tempfile.mkdtemp(prefix='bench_ros_'))
    graph.start()
    try:
        deadline = now() + 90
        while not events['image'] and now() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
        if not events['image']:
            raise SystemExit(f'no images within 90 s; logs in {graph.log_dir}')
        end_warmup = now() + warmup
        while now() < end_warmup:
            rclpy.spin_once(probe, timeout_sec=0.01)
        for v in list(events.values()) + list(arrivals.values()):
            v.clear()
        actor_before = dict(actor)
        pids = {k: p for k, p in graph.pids().items()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = now()
        while now() - t0 < seconds:
            rclpy.spin_once(probe, timeout_sec=0.01)
        window = now() - t0
        cpu = {k: 100.0 * (cpu_seconds(p) - cpu0[k]) / window for k, p in pids.items()}
        deadline = now() + 2.0  # one more actor status, for its counters at the window's end
        while now() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
    finally:
        graph.stop()
        probe.destroy_node()
        rclpy.try_shutdown()

    images = np.asarray(events['image'])
    commands = np.asarray(events['command'])

    def after(targets, sources):
        idx = np.searchsorted(targets, sources, side='left')
        ok = idx < len(targets)
        return 1e3 * (targets[idx[ok]] - sources[ok])

    def pct(values):
        return ({'p50': round(float(np.percentile(values, 50)), 1),
                 'p99': round(float(np.percentile(values, 99)), 1)} if len(values) else None)

    to_command = after(commands, images)
    to_state = np.asarray([1e3 * (t - arrivals['image'][s]) for s, t in arrivals['pose'].items()
                           if s in arrivals['image']])
    sim = load_params(task)['sim']
    nominal = sim['control_hz'] * sim.get('real_time_factor', 1.0)
    plans = int(actor.get('plans', 0)) - int(actor_before.get('plans', 0))
    misses = int(actor.get('deadline_misses', 0)) - int(actor_before.get('deadline_misses', 0))
    return {
        'task': task, 'mode': mode, 'controller': controller, 'window_s': round(window, 1),
        'images': int(len(images)), 'commands': int(len(commands)),
        'states': int(len(events['state'])), 'episodes_started': len(events['start']),
        'rate_hz': round((len(images) - len(events['start'])) / window, 2),
        'nominal_rate_hz': nominal if mode == 'realtime' else None,
        'image_to_command_ms': pct(to_command), 'image_to_state_ms': pct(to_state),
        'frames_estimated': round(len(to_state) / max(len(arrivals['image']), 1), 3),
        'cpu_percent_of_one_core': {k: round(v, 1) for k, v in cpu.items()},
        'actor': {'plans': plans, 'deadline_misses': misses,
                  'plan_ms_last': actor.get('plan_ms'), 'plan_ms_max': actor.get('plan_ms_max'),
                  'deadline_ms': actor.get('deadline_ms')} if actor else None,
    }


def main():
    """Compare success, then measure each mode; print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', type=task_argument, required=True, help='a registered task')
    parser.add_argument('--controller', choices=['mpc', 'scripted'], default='mpc')
    parser.add_argument('--modes', nargs='+', choices=['lockstep', 'realtime'],
                        default=['lockstep', 'realtime'])
    parser.add_argument('--episodes', type=int, default=10,
                        help='seeded episodes of the success comparison (0: skip it)')
    parser.add_argument('--seed', type=int, default=0, help='first seed of the comparison')
    parser.add_argument('--seconds', type=float, default=20.0, help='measurement window, s')
    parser.add_argument('--warmup', type=float, default=5.0, help='ignored start, s')
    args = parser.parse_args()

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    lock = None
    if 'ROS_DOMAIN_ID' not in os.environ:
        domain, lock = claim_domain()
        os.environ['ROS_DOMAIN_ID'] = str(domain)
    result = {'task': args.task, 'controller': args.controller, 'cpus': os.cpu_count(),
              'load_average': os.getloadavg()[0]}
    if args.episodes > 0:
        s = compare_success(args.task, args.episodes, args.seed, args.controller)
        result['success'] = s
        print(f'{args.task} {args.controller}, seeds {s["seeds"][0]}..{s["seeds"][1]}: '
              f'ROS graph {s["graph"]["success_rate"]:.0%} '
              f'{[round(v, 2) for v in s["graph"]["interval95"]]} in {s["graph"]["wall_s"]} s, '
              f'pure Python {s["python"]["success_rate"]:.0%} '
              f'{[round(v, 2) for v in s["python"]["interval95"]]} in '
              f'{s["python"]["wall_s"]} s; same outcome {s["same_outcome"]:.0%}, same steps '
              f'{s["same_steps"]:.0%}', flush=True)
    for mode in args.modes:
        m = measure_graph(args.task, mode, args.controller, args.seconds, args.warmup)
        result[mode] = m
        rate = f'{m["rate_hz"]:.2f} Hz'
        if mode == 'realtime':
            rate += f' (nominal {m["nominal_rate_hz"]:.1f} Hz)'
        print(f'{args.task}, {mode}, {args.controller}, {m["window_s"]} s window on '
              f'{os.cpu_count()} CPUs:')
        print(f'  control rate         {rate}')
        if m['image_to_command_ms']:
            print(f'  image -> command     p50 {m["image_to_command_ms"]["p50"]} ms, '
                  f'p99 {m["image_to_command_ms"]["p99"]} ms ({m["commands"]} commands)')
        if m['image_to_state_ms']:
            print(f'  image -> /hlai/state p50 {m["image_to_state_ms"]["p50"]} ms, '
                  f'p99 {m["image_to_state_ms"]["p99"]} ms '
                  f'({100 * m["frames_estimated"]:.0f} % of frames estimated)')
        if m['actor']:
            print(f'  actor                {m["actor"]["plans"]} plans, '
                  f'{m["actor"]["deadline_misses"]} over the {m["actor"]["deadline_ms"]} ms '
                  f'deadline, plan max {m["actor"]["plan_ms_max"]} ms')
        print('  CPU (% of one core)  ' + ', '.join(
            f'{k} {v:.1f}' for k, v in m['cpu_percent_of_one_core'].items()), flush=True)
    print(json.dumps(result))
    if lock is not None:
        lock.close()


if __name__ == '__main__':
    main()
