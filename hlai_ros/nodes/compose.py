"""Several hlai_ros nodes composed in one process on one executor (``hlai run --compose``).

Usage: ``python -m hlai_ros.nodes.compose '<json list>'`` where each item is
``{"executable": "sim", "arguments": ["--ros-args", ...]}``: the same node classes and the
same per-node ``--ros-args`` (name, parameter file, overrides, remaps) as separate processes
get, so messages between them stay in the process while behaving identically.
"""
from __future__ import annotations

import importlib
import json
import sys

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from hlai_ros.nodes.spin import (
    START_ERRORS,
    StopRequest,
    exit_now,
    node_name,
    refuse_start,
    spin_until_stopped,
)


def node_class(executable: str):
    """Return the Node subclass defined in ``hlai_ros.nodes.<executable>``."""
    module = importlib.import_module(f'hlai_ros.nodes.{executable}')
    classes = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Node)
               and c.__module__ == module.__name__]
    if len(classes) != 1:
        raise ValueError(f'hlai_ros.nodes.{executable} defines {len(classes)} node classes; '
                         'expected one')
    return classes[0]


def main(argv=None):
    """Create every node of the JSON list, spin them together until shutdown."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit('usage: python -m hlai_ros.nodes.compose \'[{"executable": ..., '
                         '"arguments": [...]}, ...]\'')
    items = json.loads(argv[0])
    stop = StopRequest().install()  # as `spin_node`: the first signal stops, later ones wait
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stop.install()  # again: rclpy's init may replace them
    nodes, status = [], 0
    executor = SingleThreadedExecutor()
    try:
        for item in items:
            try:
                node = node_class(item['executable'])(cli_args=item['arguments'],
                                                      use_global_arguments=False)
            except START_ERRORS as exc:  # ends without finalisation too, as `spin_node`
                status = refuse_start(node_name(item['arguments'], item['executable']),
                                      exc).code
                break
            nodes.append(node)
            executor.add_node(node)
        else:
            spin_until_stopped(executor, stop)
    finally:
        for node in reversed(nodes):
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(uninstall_handlers=False)
        stop.ignore_from_now_on()
    exit_now(status)


if __name__ == '__main__':
    main()
