r"""Latency, control rate and CPU of the ROS graph (sim, perception, scripted controller).

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_ros.py \\
        --task cliff --mode realtime --seconds 20

Starts the graph of `hlai_ros.graph` as separate processes (as ``hlai run`` does), plus a probe
node in this process that timestamps, on one wall clock (``time.monotonic``), every colour
image, every ``/hlai/state`` and every command it receives. Figures:

- sensor-to-command latency: from an image's arrival to the arrival of the first command after
  it (p50, p99). Until the mpc_actor exists the command comes from the scripted baseline,
  which reacts to the ground truth published with the image, so this is the graph's transport
  plus controller path; perception's own path is reported as image-to-state latency, frame by
  frame (the estimated pose carries the image's stamp), with the share of frames estimated (a
  perception slower than the camera skips to the newest frame);
- achieved control rate in realtime mode: control steps per wall-clock second (images less
  the first image of each new episode), against
  ``control_hz * real_time_factor``; in lockstep mode, the steps per second the loop sustains;
- CPU per node: user + system time from /proc over the measurement window, in % of one core.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _claim_domain() -> tuple[int, object]:
    """Claim a free ROS_DOMAIN_ID with the tests' lock files (so a run never shares one)."""
    for k in range(100):
        domain = 1 + (os.getpid() + k) % 100
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


def main():
    """Start the graph, measure over the window, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', choices=['push', 'cliff'], default='cliff')
    parser.add_argument('--mode', choices=['realtime', 'lockstep'], default='realtime')
    parser.add_argument('--seconds', type=float, default=20.0, help='measurement window, s')
    parser.add_argument('--warmup', type=float, default=3.0, help='ignored start, s')
    args = parser.parse_args()

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    lock = None
    if 'ROS_DOMAIN_ID' not in os.environ:
        domain, lock = _claim_domain()
        os.environ['ROS_DOMAIN_ID'] = str(domain)

    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray, String

    from hlai_ros.config import load_params
    from hlai_ros.data.topics import COMMAND_TOPIC
    from hlai_ros.graph import GraphOptions, build, params_file
    from hlai_ros.nodes.convert import message_class, stamp_ns
    from hlai_ros.nodes.perception import POSE_TOPIC
    from hlai_ros.runner import GraphProcesses

    rclpy.init()
    probe = Node('bench_probe')
    events = {'image': [], 'state': [], 'command': [], 'start': []}
    arrivals = {'image': {}, 'pose': {}}  # header stamp (ns) -> arrival time
    now = time.monotonic

    def on_image(msg):
        events['image'].append(now())
        arrivals['image'][stamp_ns(msg.header.stamp)] = events['image'][-1]

    probe.create_subscription(Image, '/camera/image_raw', on_image, 100)
    probe.create_subscription(Float32MultiArray, '/hlai/state',
                              lambda m: events['state'].append(now()), 100)
    probe.create_subscription(
        PoseStamped, POSE_TOPIC[args.task],
        lambda m: arrivals['pose'].__setitem__(stamp_ns(m.header.stamp), now()), 100)
    probe.create_subscription(String, '/hlai/episode', lambda m: events['start'].append(now())
                              if '"start"' in m.data else None, 100)
    command = COMMAND_TOPIC[args.task]
    probe.create_subscription(message_class(command.msgtype), command.name,
                              lambda m: events['command'].append(now()), 100)

    specs = build(GraphOptions(task=args.task, mode=args.mode, extra_nodes=('bench_probe',)))
    graph = GraphProcesses(specs, params_file(args.task), False,
                           tempfile.mkdtemp(prefix='bench_ros_'))
    graph.start()
    try:
        deadline = now() + 60
        while not events['image'] and now() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
        if not events['image']:
            raise SystemExit(f'no images within 60 s; logs in {graph.log_dir}')
        end_warmup = now() + args.warmup
        while now() < end_warmup:
            rclpy.spin_once(probe, timeout_sec=0.01)
        for v in list(events.values()) + list(arrivals.values()):
            v.clear()
        pids = {k: p for k, p in graph.pids().items()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = now()
        while now() - t0 < args.seconds:
            rclpy.spin_once(probe, timeout_sec=0.01)
        window = now() - t0
        cpu = {k: 100.0 * (cpu_seconds(p) - cpu0[k]) / window for k, p in pids.items()}
    finally:
        graph.stop()
        probe.destroy_node()
        rclpy.try_shutdown()

    images = np.asarray(events['image'])
    commands = np.asarray(events['command'])
    states = np.asarray(events['state'])

    def after(targets, sources):
        idx = np.searchsorted(targets, sources, side='left')
        ok = idx < len(targets)
        return 1e3 * (targets[idx[ok]] - sources[ok])

    to_command = after(commands, images)
    # perception's latency, frame by frame: the pose it estimates carries the image's stamp
    to_state = np.asarray([1e3 * (t - arrivals['image'][s]) for s, t in arrivals['pose'].items()
                           if s in arrivals['image']])
    estimated = len(to_state) / max(len(arrivals['image']), 1)
    sim = load_params(args.task)['sim']
    nominal = sim['control_hz'] * sim.get('real_time_factor', 1.0)
    result = {
        'task': args.task, 'mode': args.mode, 'window_s': window,
        'images': int(len(images)), 'commands': int(len(commands)), 'states': int(len(states)),
        'episodes_started': len(events['start']),
        'rate_hz': (len(images) - len(events['start'])) / window,
        'nominal_rate_hz': nominal if args.mode == 'realtime' else None,
        'image_to_command_ms': {'p50': float(np.percentile(to_command, 50)),
                                'p99': float(np.percentile(to_command, 99))},
        'image_to_state_ms': {'p50': float(np.percentile(to_state, 50)),
                              'p99': float(np.percentile(to_state, 99))}
        if len(to_state) else None,
        'frames_estimated': estimated,
        'cpu_percent_of_one_core': {k: round(v, 1) for k, v in cpu.items()},
    }
    print(f'{args.task}, {args.mode}, {window:.1f} s window on {os.cpu_count()} CPUs:')
    rate = f'{result["rate_hz"]:.2f} Hz'
    if args.mode == 'realtime':
        rate += f' (nominal {nominal:.1f} Hz)'
    print(f'  control rate         {rate}')
    print(f'  image -> command     p50 {result["image_to_command_ms"]["p50"]:.1f} ms, '
          f'p99 {result["image_to_command_ms"]["p99"]:.1f} ms ({len(to_command)} images)')
    if result['image_to_state_ms']:
        print(f'  image -> /hlai/state p50 {result["image_to_state_ms"]["p50"]:.1f} ms, '
              f'p99 {result["image_to_state_ms"]["p99"]:.1f} ms '
              f'({100 * estimated:.0f} % of frames estimated)')
    print('  CPU (% of one core)  ' + ', '.join(f'{k} {v:.1f}' for k, v in cpu.items()))
    print(json.dumps(result))
    if lock is not None:
        lock.close()


if __name__ == '__main__':
    main()
