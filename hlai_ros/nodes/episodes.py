"""Seeded episodes of one world on a continuous clock, as the contract's messages (ROS-free).

The `sim` node is a thin shell around `EpisodeSession`: the session owns the world, the seeds,
the simulated clock and the episode markers, and turns an observation into the same messages
that `hlai collect` writes (`hlai_ros.data.messages`), so a live graph and a bag carry the same
bytes. Episode i is seeded with ``seed + i``; stamps are ``(tick + 1) * dt`` where the tick
counts control steps across episodes (one extra tick after each episode's end, as in
`EpisodeWriter`), so they increase monotonically and never start at zero (time 0 means "unset"
to a ROS node on sim time).
"""
from __future__ import annotations

import json

import numpy as np

from hlai_ros.data import messages
from hlai_ros.data import proprio as proprio_codec
from hlai_ros.contract import (
    CAMERA_DEPTH,
    CAMERA_INFO,
    CAMERA_RGB,
    PROPRIO_TOPIC,
    WORLD_FRAME,
    Topic,
)
from hlai_ros.data.writer import FORMAT_VERSION, to_jsonable


class EpisodeSession:
    """Runs seeded episodes of `task`'s world, one control step at a time.

    Args:
        task: 'push' or 'cliff'.
        world_config: the world's frozen config (`hlai_ros.config.world_config`).
        seed: seed of episode 0; episode i uses ``seed + i``.
        episodes: number of episodes to run; 0 runs until stopped.
        max_steps: time limit in control steps (None: the registered one).

    """

    def __init__(self, task: str, world_config, seed: int = 0, episodes: int = 0,
                 max_steps: int | None = None):
        from hlai_ros.sim import make

        kwargs = {} if max_steps is None else {'max_episode_steps': int(max_steps)}
        self.task = task
        self.env = make(task, config=world_config, **kwargs)
        self.world = self.env.unwrapped
        self.camera = self.world.nominal_camera()
        self.seed, self.episodes = int(seed), int(episodes)
        self.dt_ns = int(round(1e9 / world_config.control_hz))
        self.tick = 0
        self.episode = -1
        self.obs: dict | None = None
        self.info: dict = {}
        self.steps, self.episode_return, self.open = 0, 0.0, False

    @property
    def stamp_ns(self) -> int:
        """Stamp of the current observation, nanoseconds of simulated time."""
        return (self.tick + 1) * self.dt_ns

    @property
    def finished(self) -> bool:
        """Whether every requested episode has ended."""
        return self.episodes > 0 and self.episode + 1 >= self.episodes and not self.open

    def start(self) -> dict:
        """Reset the world for the next seeded episode; return its start marker."""
        if self.open:
            raise RuntimeError(f'episode {self.episode} is still open; end it first')
        if self.finished:
            raise RuntimeError(f'all {self.episodes} episodes have run')
        self.episode += 1
        seed = self.seed + self.episode
        self.obs, self.info = self.env.reset(seed=seed)
        self.steps, self.episode_return, self.open = 0, 0.0, True
        cam = self.camera
        return {'event': 'start', 'episode': self.episode, 'task': self.task, 'seed': seed,
                'format': FORMAT_VERSION, 'control_hz': 1e9 / self.dt_ns,
                'proprio_names': list(self.world.proprio_names),
                'camera': {'width': cam.width, 'height': cam.height, 'near': cam.near,
                           'far': cam.far, 'frame_id': cam.frame_id},
                'source': 'sim_node', 'stamp_ns': self.stamp_ns}

    def step(self, action) -> bool:
        """Advance one control period with `action` (clipped to the bounds); return done."""
        if not self.open:
            raise RuntimeError('no episode is open')
        space = self.env.action_space
        action = np.clip(np.asarray(action, dtype=np.float32), space.low, space.high)
        self.obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.tick += 1
        self.steps += 1
        self.episode_return += float(reward)
        return bool(terminated or truncated)

    def end(self, reason: str | None = None) -> dict:
        """Close the open episode; return its end marker (`reason`: why it was cut short)."""
        if not self.open:
            raise RuntimeError('no episode is open')
        success = bool(self.info.get('is_success', False))
        failure = self.info.get('failure')
        marker = {'event': 'end', 'episode': self.episode, 'task': self.task,
                  'seed': self.seed + self.episode, 'success': success, 'failure': failure,
                  'return': self.episode_return, 'steps': self.steps,
                  'truncated': not success and failure is None, 'stamp_ns': self.stamp_ns}
        if reason is not None:
            marker['interrupted'] = reason
        self.tick += 1
        self.open = False
        return marker

    def set_goal(self, goal_xy) -> bool:
        """Move the goal (x, y), metres; return False when it is already there."""
        goal = np.asarray(goal_xy, dtype=np.float32).reshape(-1)[:2]
        if np.allclose(goal, self.world.goal, atol=1e-6):
            return False
        self.world.set_goal(goal)
        if self.obs is not None:
            self.obs = dict(self.obs, goal=self.world.goal)
        return True

    # -- messages ---------------------------------------------------------------------------
    def proprio_topic(self) -> Topic:
        """Return the proprioception topic of the task."""
        return PROPRIO_TOPIC[self.task]

    def clock_message(self):
        """Return the /clock message of the current stamp."""
        return messages.clock(self.stamp_ns)

    def sensor_messages(self) -> list[tuple[Topic, object]]:
        """Return [(topic, typestore message)] of the current observation, sensors first."""
        t, cam, obs = self.stamp_ns, self.camera, self.obs
        if self.task == 'push':
            prop = proprio_codec.joint_state_from_vector(self.world.proprio_names,
                                                         obs['proprio'], t)
        else:
            prop = proprio_codec.odometry_from_vector(self.world.proprio_names,
                                                      obs['proprio'], t)
        return [(CAMERA_RGB, messages.rgb_image(obs['rgb'], t, cam.frame_id)),
                (CAMERA_DEPTH, messages.depth_image(obs['depth'], t, cam.frame_id)),
                (CAMERA_INFO, messages.camera_info(cam.K, cam.width, cam.height, t,
                                                   cam.frame_id)),
                (PROPRIO_TOPIC[self.task], prop)]

    def goal_message(self):
        """Return the current goal as a PoseStamped in the world frame."""
        return messages.pose_stamped(self.world.goal, self.stamp_ns, WORLD_FRAME)

    def ground_truth_message(self):
        """Return the privileged ground truth of the current step (evaluation only)."""
        return messages.string(json.dumps(to_jsonable(self.info.get('ground_truth', {}))))

    def extrinsics_message(self):
        """Return ``world`` -> camera optical frame (nominal pose) as a TransformStamped."""
        return messages.transform_stamped(self.camera.T_world_camera, WORLD_FRAME,
                                          self.camera.frame_id, self.stamp_ns)

    def close(self) -> None:
        """Release the world."""
        self.env.close()

