"""A stand-in for a mobile robot's drivers (cliff task), for deployment tests.

Publishes only what real drivers publish: ``/odom`` (nav_msgs/Odometry, pose in ``odom``,
Gaussian noise), the overhead RGB-D camera (``/camera/image_raw`` rgb8,
``/camera/depth/image_raw`` 32FC1 with Gaussian depth noise, ``/camera/camera_info``) and its
calibrated extrinsics (``/tf_static`` or ``/hlai/camera_extrinsics``, as a static transform
publisher would). Every measurement is stamped with its capture time, ``--latency`` seconds
before it is published; no ground truth is published. The camera frame is one rendering of
the world at start (a fixed scene; the robot itself moves in the odometry only).

SIGUSR1 toggles a sensor fault: the odometry pose becomes NaN (a failed encoder), until the
next SIGUSR1.

Takes ``/cmd_vel`` (geometry_msgs/Twist) and moves a unicycle with the last command received
(held: no timeout of its own, so only the safety layer can stop it). Appends one JSON line
per event to ``--record``: ``{"kind": "start", "pose": [x, y, yaw]}`` first, then
``{"kind": "cmd", "t": wall s, "v": m/s, "w": rad/s}`` for every command received and
``{"kind": "pose", "t": ..., "pose": [...]}`` every tick (the true pose, for the test only).

    python test/nodes/standin_driver.py --record /tmp/driver.jsonl --seed 1
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import time

import numpy as np


def main() -> None:
    """Run the driver until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--record', required=True, help='JSON-lines file of events')
    parser.add_argument('--seed', type=int, default=1, help='world seed of the camera scene')
    parser.add_argument('--rate', type=float, default=10.0, help='sensor rate, Hz')
    parser.add_argument('--latency', type=float, default=0.05, help='capture to publish, s')
    parser.add_argument('--odom-noise', type=float, default=0.002, help='pose noise, m, rad')
    parser.add_argument('--depth-noise', type=float, default=0.005, help='depth noise, m')
    args = parser.parse_args()

    from hlai_ros.config import world_config
    from hlai_ros.sim import make

    env = make('cliff', config=world_config('cliff'))
    obs, _ = env.reset(seed=args.seed)
    camera = env.unwrapped.nominal_camera()
    rgb, depth = obs['rgb'].copy(), obs['depth'].astype(np.float32)
    pose = np.asarray(obs['proprio'][:3], dtype=np.float64)
    env.close()
    log = open(args.record, 'a', buffering=1)
    log.write(json.dumps({'kind': 'start', 'pose': pose.tolist()}) + '\n')

    from geometry_msgs.msg import Twist
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from hlai_ros.contract import (
        CAMERA_DEPTH,
        CAMERA_EXTRINSICS,
        CAMERA_INFO,
        CAMERA_RGB,
        ODOM,
        TF_STATIC,
    )
    from hlai_ros.data import messages
    from hlai_ros.nodes.convert import has_message, message_class, to_cdr

    rclpy.init()
    node = rclpy.create_node('standin_driver')
    rng = np.random.default_rng(args.seed)
    pub = {t.name: node.create_publisher(message_class(t.msgtype), t.name, 10)
           for t in (CAMERA_RGB, CAMERA_DEPTH, CAMERA_INFO, ODOM)}
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    extrinsics = TF_STATIC if has_message(TF_STATIC.msgtype) else CAMERA_EXTRINSICS
    tf_pub = node.create_publisher(message_class(extrinsics.msgtype), extrinsics.name, latched)
    tf = messages.transform_stamped(camera.T_world_camera, 'world', camera.frame_id,
                                    time.time_ns())
    tf_pub.publish(to_cdr(messages.tf_message([tf]) if extrinsics is TF_STATIC else tf,
                          extrinsics.msgtype))
    command = [0.0, 0.0]

    def on_command(msg):
        command[:] = [msg.linear.x, msg.angular.z]
        log.write(json.dumps({'kind': 'cmd', 't': time.time(), 'v': msg.linear.x,
                              'w': msg.angular.z}) + '\n')

    node.create_subscription(Twist, '/cmd_vel', on_command, 10)
    dt = 1.0 / args.rate
    state = {'last': time.monotonic(), 'broken': False}

    def toggle_fault(signum, frame):
        state['broken'] = not state['broken']
    signal.signal(signal.SIGUSR1, toggle_fault)

    def tick():
        now = time.monotonic()
        step, state['last'] = now - state['last'], now
        v, w = (c if math.isfinite(c) else 0.0 for c in command)
        pose[0] += v * math.cos(pose[2]) * step
        pose[1] += v * math.sin(pose[2]) * step
        pose[2] += w * step
        log.write(json.dumps({'kind': 'pose', 't': time.time(), 'pose': pose.tolist()}) + '\n')
        stamp = time.time_ns()  # capture time; published `latency` later
        noisy = pose + rng.normal(0.0, args.odom_noise, 3)
        if state['broken']:
            noisy[:] = np.nan
        odom = messages.odometry_base(stamp, noisy[0], noisy[1], noisy[2], v, w)
        noisy_depth = depth + rng.normal(0.0, args.depth_noise, depth.shape).astype(np.float32)
        time.sleep(min(args.latency, dt / 2))  # the transport delay of a real camera
        for topic, msg in ((CAMERA_RGB, messages.rgb_image(rgb, stamp, camera.frame_id)),
                           (CAMERA_DEPTH, messages.depth_image(noisy_depth, stamp,
                                                               camera.frame_id)),
                           (CAMERA_INFO, messages.camera_info(camera.K, camera.width,
                                                              camera.height, stamp,
                                                              camera.frame_id)),
                           (ODOM, odom)):
            pub[topic.name].publish(to_cdr(msg, topic.msgtype))

    node.create_timer(dt, tick)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        log.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
