"""Seeded episodes of one task's world on a continuous clock, as the contract's messages.

ROS-free. The `sim` node is a thin shell around `EpisodeSession`: the session owns the world,
the seeds, the simulated clock and the episode markers, and turns an observation into the same
messages that `hlai collect` writes (`hlai_ros.data.messages`; proprioception through the
task's embodiment, `hlai_ros.embodiments.Embodiment.encode_proprio`), so a live graph and a
bag carry the same bytes. Episode i is seeded with ``seed + i``; stamps are
``(tick + 1) * dt`` where the tick counts control steps across episodes (one extra tick after
each episode's end, as in `EpisodeWriter`), so they increase monotonically and never start at
zero (time 0 means "unset" to a ROS node on sim time). Each episode start also carries the
goal image (`goal_image_messages`: the scene rendered posed at its goal, colour and depth in the
camera's frame), the goal of the latent representation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json

import numpy as np

from hlai_ros.contract import (
    CAMERA_DEPTH,
    CAMERA_INFO,
    CAMERA_RGB,
    CLOCK,
    EPISODE,
    GOAL,
    GOAL_DEPTH,
    GOAL_IMAGE,
    GROUND_TRUTH,
    WORLD_FRAME,
    Topic,
)
from hlai_ros.data import messages
from hlai_ros.data.writer import FORMAT_VERSION, to_jsonable
from hlai_ros.tasks.registry import check_task

RO = {'read_only': True}


@dataclass(frozen=True)
class SimNodeConfig:
    """Parameters of the `sim` node (`hlai_ros.nodes.sim`), the world's own declared beside.

    The session's task, seeds and limits, and how the node paces and starts it.
    """

    task: str = field(default='', metadata=RO)
    """Registered task whose world runs (`hlai_ros.tasks`; required)."""
    mode: str = 'lockstep'
    """'lockstep': one control period per command; 'realtime': a wall-clock timer."""
    real_time_factor: float = 1.0
    """Realtime mode: simulated seconds per wall-clock second, in (0, 100]."""
    command_timeout_s: float = 0.5
    """Realtime mode: a command older than this (simulated s) is replaced by zero velocity."""
    republish_period_s: float = 1.0
    """Lockstep mode: wall-clock s without a command before the observation goes out again."""
    seed: int = field(default=0, metadata=RO)
    """Seed of episode 0; episode i uses seed + i."""
    episodes: int = field(default=0, metadata=RO)
    """Episodes to run, then idle; 0 runs until stopped."""
    max_steps: int = field(default=0, metadata=RO)
    """Time limit in control steps; 0 keeps the world's registered limit."""
    wait_for_nodes: tuple[str, ...] = field(default=(), metadata=RO)
    """Node names that must be in the graph before the first episode starts."""
    start_delay_s: float = field(default=1.0, metadata=RO)
    """Wall-clock s between those nodes appearing and the first episode (DDS discovery)."""
    publish_ground_truth: bool = True
    """Publish /ground_truth/state (privileged; evaluation and the scripted baseline only)."""

    def __post_init__(self):
        check_task(self.task)
        if self.mode not in ('lockstep', 'realtime'):
            raise ValueError(f"mode must be 'lockstep' or 'realtime', got {self.mode!r}")
        for name in ('real_time_factor', 'command_timeout_s', 'republish_period_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        for name, top in (('start_delay_s', 60), ('real_time_factor', 100)):
            if not 0 <= getattr(self, name) <= top:
                raise ValueError(f'{name} must be in [0, {top}], got {getattr(self, name)}')
        if self.episodes < 0 or self.max_steps < 0:
            raise ValueError('episodes and max_steps must be >= 0 (0: no limit of our own)')


class EpisodeSession:
    """Runs seeded episodes of a registered task's world, one control step at a time.

    Args:
        task: a registered task or its name (`hlai_ros.tasks.get_task`).
        world_config: the world's frozen config (`hlai_ros.config.world_config`).
        seed: seed of episode 0; episode i uses ``seed + i``.
        episodes: number of episodes to run; 0 runs until stopped.
        max_steps: time limit in control steps (None: the registered one).

    """

    def __init__(self, task, world_config, seed: int = 0, episodes: int = 0,
                 max_steps: int | None = None):
        from hlai_ros.sim import make
        from hlai_ros.tasks import get_task

        kwargs = {} if max_steps is None else {'max_episode_steps': int(max_steps)}
        self.task = get_task(task) if isinstance(task, str) else task
        self.embodiment = self.task.embodiment
        self.env = make(self.task.name, config=world_config, **kwargs)
        self.world = self.env.unwrapped
        self.camera = self.world.nominal_camera()
        self.seed, self.episodes = int(seed), int(episodes)
        self.dt_ns = int(round(1e9 / world_config.control_hz))
        self.tick = 0
        self.episode = -1
        self.obs: dict | None = None
        self.info: dict = {}
        self.steps, self.episode_return, self.open = 0, 0.0, False
        self.next_due = False
        """Lockstep: the episode has ended and the next command starts the next one."""
        self.ground_truth = True
        """Whether `observation` includes the privileged ground truth."""

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
        return {'event': 'start', 'episode': self.episode, 'task': self.task.name, 'seed': seed,
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
        marker = {'event': 'end', 'episode': self.episode, 'task': self.task.name,
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

    # -- the loop, as messages to publish ---------------------------------------------------
    def begin(self) -> list[tuple[Topic, object]]:
        """Start the next episode: its start marker, goal, goal image and first observation."""
        self.next_due = False
        marker = self.start()
        return [(EPISODE, messages.string(json.dumps(marker))),
                (GOAL, self.goal_message()), *self.goal_image_messages(), *self.observation()]

    def finish(self, reason: str | None = None) -> list[tuple[Topic, object]]:
        """End the open episode: its end marker."""
        self.next_due = False
        return [(EPISODE, messages.string(json.dumps(self.end(reason))))]

    def advance(self, action, defer_next: bool = False) -> list[tuple[Topic, object]]:
        """Step once: the observation; at the episode's end its marker and the next start.

        With `defer_next` (lockstep) the next episode waits for the next command (`answer`),
        so that the controller's answer to the final observation never leaks into it.
        """
        if not self.open:
            return []
        out = self.observation() if not self.step(action) else [*self.observation(),
                                                                  *self.finish()]
        if not self.open and not self.finished:
            if defer_next:
                self.next_due = True
            else:
                out += self.begin()
        return out

    def answer(self, action) -> list[tuple[Topic, object]]:
        """Lockstep: a command steps the world, or starts the episode that is due."""
        return self.begin() if self.next_due else self.advance(action, defer_next=True)

    def observation(self) -> list[tuple[Topic, object]]:
        """The clock, the sensors and (`ground_truth`) the ground truth of this step."""
        out = [(CLOCK, self.clock_message()), *self.sensor_messages()]
        return out + [(GROUND_TRUTH, self.ground_truth_message())] if self.ground_truth else out

    # -- messages ---------------------------------------------------------------------------
    def proprio_topic(self) -> Topic:
        """Return the proprioception topic of the task's robot."""
        return self.embodiment.proprio

    def command_topic(self) -> Topic:
        """Return the command topic of the task's robot."""
        return self.embodiment.command

    def clock_message(self):
        """Return the /clock message of the current stamp."""
        return messages.clock(self.stamp_ns)

    def sensor_messages(self) -> list[tuple[Topic, object]]:
        """Return [(topic, typestore message)] of the current observation, sensors first."""
        t, cam, obs = self.stamp_ns, self.camera, self.obs
        proprio = self.embodiment.encode_proprio(self.world.proprio_names, obs['proprio'], t)
        return [(CAMERA_RGB, messages.rgb_image(obs['rgb'], t, cam.frame_id)),
                (CAMERA_DEPTH, messages.depth_image(obs['depth'], t, cam.frame_id)),
                (CAMERA_INFO, messages.camera_info(cam.K, cam.width, cam.height, t,
                                                   cam.frame_id)),
                (self.embodiment.proprio, proprio)]

    def goal_message(self):
        """Return the current goal as a PoseStamped in the world frame."""
        return messages.pose_stamped(self.world.goal, self.stamp_ns, WORLD_FRAME)

    def goal_image_messages(self) -> list[tuple[Topic, object]]:
        """The goal image (`HlaiWorld.goal_observation`): colour and depth, camera frame.

        Stamped now; empty where the world renders no goal image.
        """
        try:
            goal = self.world.goal_observation()
        except NotImplementedError:
            return []
        t, frame = self.stamp_ns, self.camera.frame_id
        return [(GOAL_IMAGE, messages.rgb_image(goal['rgb'], t, frame)),
                (GOAL_DEPTH, messages.depth_image(goal['depth'], t, frame))]

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
