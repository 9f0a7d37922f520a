"""The safety layer, ROS-free: what stands between any controller and a robot's drivers.

Stable API (one idea per module):

- `limit_velocity(action, max_velocity)` (velocity.py): clip each component; NaN/Inf -> 0.
- `AccelerationLimiter(max_acceleration).limit(action, dt_s)` / `.reset(action=None)`
  (acceleration.py): change per second bounded per component.
- `WorkspaceBox(lower, upper).cut(position, action, dt_s, kinematics)` (workspace.py):
  motion that would leave the box within dt_s is cut to zero ('holonomic' vx, vy or
  'unicycle' v, omega with position x, y, yaw).
- `Watchdog(timeout_s)`: `.feed(now_s)`, `.expired(now_s)`, `.age(now_s)` (watchdog.py).
- `EStopLatch(hold_s)`: `.engage(reason, now_s)`, `.release(now_s) -> (ok, message)`,
  `.engaged` (estop.py). True on /hlai/estop engages, False does not release; the release is
  the node's ``~/release_estop`` service (std_srvs/Trigger).
- `StampCheck(FreshnessLimits(max_age_s, max_future_s)).check(stamp_ns, now_ns)` ->
  'fresh' | 'unstamped' | 'stale' | 'future' | 'out of order' (freshness.py).
- `SafetyGate(SafetyLimits(...))`: `.accept(action, now_s)`, `.update_position(p, now_s)`,
  `.output(now_s, dt_s) -> (command, reason)`, `.estop` (gate.py): all of the above in order.
- `CommandGateConfig` (command_gate.py): the ``command_gate`` node's parameters, bounded by
  the robot's limits; `.limits` is its `SafetyLimits`.
- Input checks (inputs.py): `non_finite`, `image_fault`, `depth_units_fault`,
  `camera_info_fault`, `frame_fault`; each returns '' or a fault ``'<kind>: <detail>'``.
  `StampCheck.fault(stamp_ns, now_ns)` judges a stream's stamps the same way.
"""
from hlai_ros.safety.acceleration import AccelerationLimiter
from hlai_ros.safety.estop import EStopLatch
from hlai_ros.safety.freshness import (
    FRESH,
    FUTURE,
    OUT_OF_ORDER,
    STALE,
    UNSTAMPED,
    FreshnessLimits,
    StampCheck,
)
from hlai_ros.safety.gate import SafetyGate, SafetyLimits
from hlai_ros.safety.velocity import limit_velocity
from hlai_ros.safety.watchdog import Watchdog
from hlai_ros.safety.workspace import KINEMATICS, WorkspaceBox

__all__ = ['AccelerationLimiter', 'EStopLatch', 'FRESH', 'FUTURE', 'FreshnessLimits',
           'KINEMATICS', 'OUT_OF_ORDER', 'STALE', 'SafetyGate', 'SafetyLimits', 'StampCheck',
           'UNSTAMPED', 'Watchdog', 'WorkspaceBox', 'limit_velocity']
