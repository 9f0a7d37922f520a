"""The e-stop latch: once engaged, it stays engaged until an explicit release.

Semantics used by every node of hlai_ros: ``True`` on ``/hlai/estop`` (std_msgs/Bool)
engages; ``False`` does NOT release (a button's "not pressed" heartbeat or a stale publisher
must never restart a robot); the release is an explicit request, the ``~/release_estop``
service (std_srvs/Trigger) of the node that latched. A release while ``True`` messages keep
arriving is refused for `hold_s` seconds after the last one (the button is still held).
"""
from __future__ import annotations

import math


class EStopLatch:
    """A latched emergency stop.

    Args:
        hold_s: a release is refused while the last engage request is younger than this,
            seconds (>= 0).

    """

    def __init__(self, hold_s: float = 0.5):
        if not (math.isfinite(hold_s) and hold_s >= 0):
            raise ValueError(f'hold_s must be finite and >= 0, got {hold_s}')
        self.hold_s = float(hold_s)
        self.engaged = False
        """Whether commands must be zero."""
        self.reason = ''
        """Why it was engaged last."""
        self.engagements = 0
        """How many times it went from released to engaged."""
        self.last_request_s = -math.inf

    def engage(self, reason: str, now_s: float) -> None:
        """Engage (or keep engaged) the stop."""
        if not self.engaged:
            self.engagements += 1
        self.engaged = True
        self.reason = str(reason)
        self.last_request_s = float(now_s)

    def release(self, now_s: float) -> tuple[bool, str]:
        """Release the stop; return (released, message)."""
        if not self.engaged:
            return True, 'e-stop was not engaged'
        held = float(now_s) - self.last_request_s
        if held < self.hold_s:
            return False, (f'e-stop requested {held:.2f} s ago (less than {self.hold_s} s): '
                           'still held, not released')
        self.engaged = False
        return True, f'e-stop released (was engaged: {self.reason})'
