"""The view: what the graph perceives, plans, imagines and costs, streamed into rerun.

rclpy-free core of the live ``view`` node (`hlai_ros.nodes.view`, ``hlai run --view``,
``view:=true``) and of ``hlai view BAG_DIR``: `log` maps contract messages onto rerun entities
(one layout for both), `session` opens the sinks (an .rrd file, the bundled web viewer served
on 127.0.0.1, a running viewer), `bag` replays recorded bags, `config` holds the node's
parameters. rerun-sdk is an optional extra (``pip install -e '.[view]'``).
"""
