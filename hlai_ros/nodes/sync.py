"""Matching sensor messages by stamp (ROS-free; the perception node's synchroniser).

A camera frame is the key: its colour image opens a candidate set, depth must carry the same
stamp within the tolerance (DESIGN.md: images, depth and camera info share a stamp), and the
proprioception nearest in stamp within the tolerance completes it. Each key stamp is emitted
at most once and never out of order, so a republished or late frame is not estimated twice.
"""
from __future__ import annotations


class StampMatcher:
    """Collects stamped values by role and emits complete sets keyed on `key`'s stamps.

    Args:
        key: the role whose stamps define a set (the colour image).
        others: the roles each set also needs.
        tolerance_ns: largest stamp difference to the key, nanoseconds.
        keep: messages kept per role.

    """

    def __init__(self, key: str, others: tuple[str, ...], tolerance_ns: int, keep: int = 20):
        if tolerance_ns < 0 or keep < 1:
            raise ValueError('tolerance_ns must be >= 0 and keep >= 1')
        self.key, self.others = key, tuple(others)
        self.tolerance_ns, self.keep = int(tolerance_ns), int(keep)
        self._buffers: dict[str, dict[int, object]] = {r: {} for r in (key, *others)}
        self.last_ns = -1
        """Stamp of the last emitted set (older or equal key stamps are ignored)."""

    def add(self, role: str, stamp_ns: int, value) -> list[tuple[int, dict]]:
        """Add one message; return the sets it completed, oldest first: [(stamp, {role: v})]."""
        if role not in self._buffers:
            raise KeyError(f'unknown role {role!r}; roles: {sorted(self._buffers)}')
        if role == self.key and stamp_ns <= self.last_ns:
            return []
        buffer = self._buffers[role]
        buffer[int(stamp_ns)] = value
        while len(buffer) > self.keep:
            del buffer[min(buffer)]
        out = []
        for stamp in sorted(self._buffers[self.key]):
            if stamp <= self.last_ns:
                continue
            match = {self.key: self._buffers[self.key][stamp]}
            for other in self.others:
                near = self._nearest(other, stamp)
                if near is None:
                    break
                match[other] = self._buffers[other][near]
            else:
                out.append((stamp, match))
                self.last_ns = stamp
        if out:
            for buffer in self._buffers.values():
                for stamp in [s for s in buffer if s < self.last_ns - self.tolerance_ns]:
                    del buffer[stamp]
        return out

    def _nearest(self, role: str, stamp: int) -> int | None:
        candidates = [s for s in self._buffers[role] if abs(s - stamp) <= self.tolerance_ns]
        return min(candidates, key=lambda s: abs(s - stamp)) if candidates else None

    def reset(self) -> None:
        """Forget everything (a new recording or a clock that jumped back)."""
        for buffer in self._buffers.values():
            buffer.clear()
        self.last_ns = -1
