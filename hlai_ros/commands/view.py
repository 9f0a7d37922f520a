"""`hlai view BAG_DIR`: replay recorded bags into rerun, on the bags' own timeline.

Camera and depth, the state and proprioception, the commands, the episode outcomes (and, in a
recorder's bag of a running graph, the plan, imagined rollouts, costs and gate status), in the
layout of the live view (``hlai run --view``). ``--save FILE.rrd`` writes a recording that
``rerun FILE.rrd`` opens; ``--web`` serves the web viewer bundled with rerun-sdk on 127.0.0.1
until Ctrl-C; ``--connect URL`` streams to a running viewer; with none of them the native
viewer starts (it needs a display).
"""
from __future__ import annotations

import argparse
from pathlib import Path
import signal
import sys
import time

HELP = 'replay recorded bags into rerun (camera, state, commands, episodes) on their timeline'


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai view`."""
    from hlai_ros.view.session import GRPC_PORT, WEB_PORT
    parser.add_argument('bags', type=Path, metavar='BAG_DIR',
                        help='a bag, or a directory of bags (searched recursively)')
    parser.add_argument('--save', type=Path, default=None, metavar='FILE.rrd',
                        help='write the replay to an .rrd file (open it with `rerun FILE.rrd`)')
    parser.add_argument('--web', action='store_true',
                        help='serve the bundled rerun web viewer on 127.0.0.1 until Ctrl-C')
    parser.add_argument('--connect', default='', metavar='URL',
                        help='stream to a running viewer, e.g. rerun+http://127.0.0.1:9876/proxy')
    parser.add_argument('--grpc-port', type=int, default=GRPC_PORT,
                        help=f'--web: port of the local rerun server (default {GRPC_PORT})')
    parser.add_argument('--web-port', type=int, default=WEB_PORT,
                        help=f'--web: port of the viewer page (default {WEB_PORT})')
    parser.add_argument('--image-period', type=float, default=0.0, metavar='S',
                        help='log at most one image per camera topic every S seconds of bag '
                             'time (default 0: every image)')


def run(args: argparse.Namespace) -> int:
    """Run `hlai view`; return the exit status."""
    from hlai_ros.data.errors import BagError
    from hlai_ros.view.bag import replay
    from hlai_ros.view.log import TopicLogger
    from hlai_ros.view.session import open_view

    if args.save is not None and args.save.suffix != '.rrd':
        print(f'hlai view: --save must name an .rrd file, got {args.save}', file=sys.stderr)
        return 2
    if not args.bags.exists():
        print(f'hlai view: no such bag file or directory: {args.bags}', file=sys.stderr)
        return 2
    native = not (args.save or args.web or args.connect)
    try:
        session = open_view(f'hlai_view_{args.bags.resolve().name}', save=args.save or '',
                            web=args.web, connect=args.connect, spawn=native,
                            grpc_port=args.grpc_port, web_port=args.web_port)
    except RuntimeError as exc:
        print(f'hlai view: {exc}', file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        try:
            result = replay(args.bags, TopicLogger(session.stream, args.image_period),
                            warn=lambda text: print(f'hlai view: {text}', file=sys.stderr))
        except (BagError, FileNotFoundError) as exc:
            print(f'hlai view: {exc}', file=sys.stderr)
            return 2
        session.flush()
        shown = ', '.join(f'{k} {v}' for k, v in sorted(result['entities'].items()))
        print(f'hlai view: {result["messages"]} messages of {len(result["bags"])} bags in '
              f'{time.perf_counter() - start:.1f} s ({shown}) -> {", ".join(session.targets)}',
              flush=True)
        if args.web:
            signal.signal(signal.SIGTERM, _interrupt)  # stops like Ctrl-C: server closed
            print(f'hlai view: serving; open {session.url} (Ctrl-C stops)', flush=True)
            while session.server.proc.poll() is None:
                time.sleep(0.5)
            print('hlai view: the rerun server stopped', file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        session.close()
