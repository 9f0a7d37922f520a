"""A tiny HlaiWorld for data-path tests: two 'joints' integrating the action, a box to see."""
from __future__ import annotations

from gymnasium import spaces
import numpy as np

from hlai_ros.sim.base import HlaiWorld, WorldConfig


class ToyWorld(HlaiWorld):
    """Point moved by a planar velocity; proprioception labelled like joint states."""

    proprio_names = ('j1_pos', 'j2_pos', 'j1_vel', 'j2_vel')

    def __init__(self, config: WorldConfig | None = None, **overrides):
        config = config or WorldConfig(image_width=16, image_height=12)
        super().__init__(config, **overrides)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._q = np.zeros(2)
        self._qd = np.zeros(2)

    def _build(self, options):
        self._q = self.np_random.uniform(-0.5, 0.5, 2)
        self._qd = np.zeros(2)
        self._goal = self.np_random.uniform(-0.5, 0.5, 2).astype(np.float32)
        self.bullet.createMultiBody(
            baseMass=0, baseCollisionShapeIndex=self.bullet.createCollisionShape(
                self.bullet.GEOM_BOX, halfExtents=[0.2, 0.2, 0.2]))

    def _apply_action(self, action):
        self._qd = np.asarray(action, dtype=np.float64)
        self._q = self._q + self._qd * self.dt

    def _proprio(self):
        return np.concatenate([self._q, self._qd]).astype(np.float32)

    def _ground_truth(self):
        return {'q': self._q.copy(), 'step': self._step_count}

    def _outcome(self):
        if np.linalg.norm(self._q - self._goal) < 0.05:
            return True, None
        if np.max(np.abs(self._q)) > 1.0:
            return False, 'left_workspace'
        return False, None

    def _reward(self, action, success, failure):
        return -float(np.linalg.norm(self._q - self._goal))
