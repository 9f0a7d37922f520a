"""The `hlai` command: one sub-command per module in `hlai_ros.commands`.

Each command module provides `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMANDS = ('demo', 'collect', 'train', 'eval', 'run', 'view')


def _available():
    for name in COMMANDS:
        if importlib.util.find_spec(f'hlai_ros.commands.{name}') is not None:
            yield name, importlib.import_module(f'hlai_ros.commands.{name}')


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `hlai` with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog='hlai', description='hlai_ros: learned world models and MPC, native to ROS 2.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, module in _available():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hlai` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
