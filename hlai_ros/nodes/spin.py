"""The life of a node process: init, spin until Ctrl-C or shutdown, destroy, shut down."""
from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException


def spin_node(node_class, args=None) -> None:
    """Create `node_class()` and spin it; always destroy it and shut rclpy down."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
