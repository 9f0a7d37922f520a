"""Scale-out on Ray: `hlai collect`, `hlai eval` and `hlai train` across a cluster.

The default stays local processes without Ray; ``--ray [ADDRESS]`` hands the same work to a
Ray cluster and writes the same files:

- `hlai_ros.scale.collect`: episodes as Ray tasks; the driver writes the bags (one per
  ``--workers`` slot, in episode order, as a local run does), so the bags hold every episode
  exactly once, whole, and the same transitions as a local run with the same seeds.
- `hlai_ros.scale.evaluate`: one Ray task per (controller, seed); the same per-seed outcomes as
  a local `hlai eval --task`.
- `hlai_ros.scale.train`: data-parallel world-model training with Ray Train's `TorchTrainer`
  (DDP; gloo on CPU, NCCL on GPU), the same checkpoint files as a local `hlai train`; and the
  TorchTrainer wrapper both training stages share (`fit_on_ray`, `report`, `restored`, `ddp`).
- `hlai_ros.scale.actor`: the critic and the policy the same way, taking a local run's steps.

Ray is an optional extra (``pip install 'hlai_ros[ray]'``); `require_ray` stops with the
install command when it is missing. Nothing here imports rclpy.
"""
from __future__ import annotations

import os

RAY_VERSION = '2.60.0'
"""The Ray release this package is tested with (setup.py's ``ray`` extra pins it)."""

INSTALL_HINT = (f"pip install 'hlai_ros[ray]' (or: pip install 'ray[train]=={RAY_VERSION}')")
"""What to run when Ray is missing."""

WORKER_ENV = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID', 'OMP_NUM_THREADS',
              'HLAI_CACHE_DIR')
"""Environment variables of the driver that Ray workers inherit (the job's runtime_env)."""


class RayMissingError(RuntimeError):
    """Ray is not installed but a ``--ray`` run was asked for."""


def require_ray():
    """Return the `ray` module, or raise `RayMissingError` with the install command."""
    try:
        import ray
    except ImportError:
        raise RayMissingError(f'--ray needs Ray, which is not installed: {INSTALL_HINT}'
                              ) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None):
    """Connect to the Ray cluster at `address`, or start one on this machine; return `ray`.

    A connection made earlier in this process (`ray.is_initialized`) is reused as it is.
    Workers inherit `WORKER_ENV` from this process through the job's runtime environment;
    ``ROS_AUTOMATIC_DISCOVERY_RANGE`` defaults to LOCALHOST and ``OMP_NUM_THREADS`` to 1 there.

    Args:
        address: a cluster address (``HOST:PORT`` of ``ray start --head``, ``ray://...`` or
            ``auto``); None or '': ``RAY_ADDRESS`` if set, else a new single-machine Ray
            instance (no dashboard, no usage statistics) that ends with this process.
        num_cpus: CPUs of a new single-machine instance (None: all of this machine's).

    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('OMP_NUM_THREADS', '1')
    runtime_env = {'env_vars': env}
    address = address or os.environ.get('RAY_ADDRESS') or None
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
        ray.init(address='local', num_cpus=num_cpus, include_dashboard=False,
                 runtime_env=runtime_env, log_to_driver=False)
    return ray


def cluster_cpus() -> int:
    """CPUs of the connected cluster (at least 1)."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get('CPU', 1)))
