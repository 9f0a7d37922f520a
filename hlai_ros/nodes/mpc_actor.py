"""The `mpc_actor` node: the learned closed loop's actor (DESIGN.md: Actor).

Subscribes to ``/hlai/state`` (perception's labelled state, mapped to a `Percept` by
`Task.percept_from_state`: the model state, the goal and, for cliff, the perceived scene),
``/goal_pose`` (overrides the state's goal once received in an episode), ``/hlai/episode``
(a start marker resets the planner's warm start) and ``/hlai/estop``. It plans with the same
core as ``hlai eval``'s learned stack (`hlai_ros.tasks.compare.make_controller`: world model,
task cost, planner, and the critic and policy when the model folder holds them) and publishes
the task's command (`hlai_ros.contract.COMMAND_TOPIC`, CDR from `hlai_ros.data.messages`),
``/hlai/plan`` (nav_msgs/Path of the planned positions, `Task.position_indices`, ensemble
mean) and ``/diagnostics`` (plan time, deadline misses, model path, reloads).

When it acts:

- **Every new state is answered with one command**, planned on arrival. The sensor rate sets
  the control rate (``control_hz``) and the latency is one plan. This is also what lockstep
  simulation needs: the simulator waits for the answer, so simulated time (``use_sim_time``)
  stands still until it comes, and a timer on simulated time would never fire.
- **Watchdog**, a timer every control period on the node's clock (simulated time under
  ``use_sim_time``, so a lockstep simulator waiting for the actor never makes state stale):
  once the newest state is older than ``state_timeout_s``, a zero command goes out every
  period; planning resumes with the next fresh state.
- **Deadline**: a plan that took longer than ``deadline_s`` (wall clock) is late; with
  ``enforce_deadline`` its action is replaced by the policy's action, or zero without a policy.
  Misses are always counted.
- **E-stop** (``/hlai/estop``, std_msgs/Bool; `hlai_ros.safety.EStopLatch`, the same
  semantics as the ``command_gate``): ``true`` latches it: every state is answered with zero
  and the watchdog publishes zero each period, whatever else arrives. ``false`` does not
  release it; the ``~/release_estop`` service (std_srvs/Trigger) does, and is refused while
  ``true`` keeps coming (the planner then starts cold).
- **Bad input**: a state that cannot be read or is not finite is answered with zero and
  counted (``state_faults``).
- **Hot reload**: every ``reload_period_s`` (wall clock) the world-model checkpoint in
  ``watch`` (default: the model folder) is checked
  (`hlai_ros.world_model.watch.CheckpointWatcher`); a new one replaces the world model between
  two plans (the planner starts cold; critic and policy stay); one that does not load is
  refused, the old model stays, and the reason shows in diagnostics (``reload_error``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Bool, Float32MultiArray, String
from std_srvs.srv import Trigger

from hlai_ros.data import messages
from hlai_ros.contract import COMMAND_TOPIC, EPISODE, GOAL, ODOM_FRAME, WORLD_FRAME
from hlai_ros.nodes.convert import episode_marker, message_class, state_from_message, to_cdr
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import EStopLatch

STATE_TOPIC = '/hlai/state'
PLAN_TOPIC = '/hlai/plan'
ESTOP_TOPIC = '/hlai/estop'
PLAN_FRAME = {'push': WORLD_FRAME, 'cliff': ODOM_FRAME}
"""Frame of the planned positions: the frame of the state's positions."""
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class MpcActorConfig:
    """Parameters of the `mpc_actor` node; planner defaults are ``hlai eval``'s."""

    task: str = field(default='push', metadata={'read_only': True})
    """Task whose cost, state layout and command are used: 'push' or 'cliff'."""
    model: str = field(default='', metadata={'read_only': True})
    """Model folder (world_model.json; critic.json, policy.json when trained); empty: the
    shipped models/<task>."""
    device: str = field(default='auto', metadata={'read_only': True})
    """Torch device: 'auto' (cuda when present, else cpu), 'cpu' or 'cuda'."""
    horizon: int = 12
    """Planning horizon, control steps (config/push.yaml: 20)."""
    samples: int = 128
    """Action sequences sampled per optimiser iteration (config/push.yaml: 64)."""
    iterations: int = 2
    """Optimiser iterations per plan."""
    gradient_steps: int = 1
    """Gradient refinement steps through the model per plan (config/cliff.yaml: 0)."""
    control_hz: float = field(default=10.0, metadata={'read_only': True})
    """Control rate, Hz (the sensor rate): the watchdog's period and the default deadline."""
    state_timeout_s: float = 0.0
    """State older than this (node clock, s) makes the command zero; 0: two control periods."""
    deadline_s: float = 0.0
    """Wall-clock plan time beyond which a plan is late, s; 0: one control period."""
    enforce_deadline: bool = True
    """Replace a late plan's action by the policy's (zero without one); false where the world
    waits for the command (lockstep simulation): misses are then only counted."""
    torch_threads: int = field(default=1, metadata={'read_only': True})
    """Torch CPU threads (two were up to 7.5x slower than one on a loaded 2-core machine)."""
    reload_period_s: float = 1.0
    """Wall-clock period of checking for a new world-model checkpoint, s; 0: never."""
    watch: str = field(default='', metadata={'read_only': True})
    """Folder whose world-model checkpoint is hot-reloaded (e.g. the world_model node's
    output_dir); empty: the model folder."""

    def __post_init__(self):
        if self.task not in ('push', 'cliff'):
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        if self.device not in ('auto', 'cpu', 'cuda'):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.horizon < 1 or self.samples < 2 or self.iterations < 1:
            raise ValueError(f'need horizon >= 1, samples >= 2 and iterations >= 1, got '
                             f'{self.horizon}, {self.samples}, {self.iterations}')
        if self.gradient_steps < 0 or self.torch_threads < 1:
            raise ValueError(f'need gradient_steps >= 0 and torch_threads >= 1, got '
                             f'{self.gradient_steps}, {self.torch_threads}')
        if not 0 < self.control_hz <= 1000:
            raise ValueError(f'control_hz must be in (0, 1000], got {self.control_hz}')
        for name in ('state_timeout_s', 'deadline_s', 'reload_period_s'):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0 (0: the default), '
                                 f'got {value}')

    @property
    def period_s(self) -> float:
        """Control period, s."""
        return 1.0 / self.control_hz

    @property
    def timeout_s(self) -> float:
        """Effective state timeout, s."""
        return self.state_timeout_s or 2.0 * self.period_s

    @property
    def budget_s(self) -> float:
        """Effective plan deadline, s."""
        return self.deadline_s or self.period_s


def planner_config(cfg: MpcActorConfig):
    """The `PlannerConfig` of the actor's parameters (``hlai eval``'s, `task_planner`)."""
    from hlai_ros.tasks.compare import task_planner
    return task_planner(cfg.task, horizon=cfg.horizon, samples=cfg.samples,
                        iterations=cfg.iterations, gradient_steps=cfg.gradient_steps)


class MpcActorNode(Node):
    """Labelled state in, planned command out; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('mpc_actor', **kwargs)
        import torch

        from hlai_ros.tasks import get_task
        from hlai_ros.tasks.compare import default_model_dir
        from hlai_ros.world_model.model import default_device
        from hlai_ros.world_model.watch import CheckpointWatcher

        self.params = NodeParameters(self, MpcActorConfig, on_change=self._reconfigure)
        cfg = self.params.config
        torch.set_num_threads(cfg.torch_threads)
        if cfg.device == 'cuda' and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; "
                             "use 'auto' or 'cpu'")
        self.device = default_device() if cfg.device == 'auto' else torch.device(cfg.device)
        self.task = get_task(cfg.task)
        self.model_dir = (Path(cfg.model).expanduser() if cfg.model
                          else default_model_dir(cfg.task))
        self.controller = self._load_controller()
        self.watch_dir = Path(cfg.watch).expanduser() if cfg.watch else self.model_dir
        self.watcher = CheckpointWatcher(self.watch_dir, self.device,
                                         {'state_dim': self.task.state_dim,
                                          'action_dim': self.task.action_dim})
        self.command = COMMAND_TOPIC[cfg.task]
        self.stats = {'plans': 0, 'plan_ms': 0.0, 'plan_ms_max': 0.0, 'deadline_misses': 0,
                      'fallbacks': 0, 'zero_commands': 0, 'state_faults': 0, 'reloads': 0,
                      'reload_error': ''}
        self.latch = EStopLatch()
        self.goal: np.ndarray | None = None
        self._state_ns: int | None = None
        self._stale = False
        sub = self.create_subscription
        # Created first: with several messages ready, markers and the e-stop come before a
        # state (the executor serves subscriptions in creation order).
        sub(String, EPISODE.name, self._on_episode, 100)
        sub(Bool, ESTOP_TOPIC, self._on_estop, 10)
        self.create_service(Trigger, '~/release_estop', self._on_release)
        sub(message_class(GOAL.msgtype), GOAL.name, self._on_goal, LATCHED)
        # Depth 1: a planner slower than the sensors plans on the newest state.
        sub(Float32MultiArray, STATE_TOPIC, self._on_state, 1)
        self.pub = self.create_publisher(message_class(self.command.msgtype),
                                         self.command.name, 10)
        self.plan_pub = self.create_publisher(message_class('nav_msgs/msg/Path'), PLAN_TOPIC, 10)
        self.diagnostics = DiagnosticsPublisher(self, 'planning', str(self.device))
        self.create_timer(cfg.period_s, self._watchdog)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(0.5, self._housekeeping, clock=steady)
        self._last_reload_check = time.monotonic()
        # Last: a state that arrives meanwhile waits in its queue (nothing is lost).
        self._warm_up()
        self.get_logger().info(
            f'{cfg.task}: model {self.model_dir} on {self.device}, critic '
            f'{self._critic is not None}, policy {self._policy is not None}; horizon '
            f'{cfg.horizon}, {cfg.samples} samples x {cfg.iterations} iterations')

    # -- the controller ---------------------------------------------------------------------
    def _load_controller(self, planner=None):
        """The learned stack of ``hlai eval`` for the model folder (raises CheckpointError)."""
        from hlai_ros.tasks.compare import CompareConfig, make_controller
        config = CompareConfig(task=self.task.name, model_dir=str(self.model_dir),
                               planner=planner or planner_config(self.params.config),
                               device=str(self.device))
        return make_controller('learned', config)

    @property
    def _critic(self):
        return getattr(self.controller.planner, 'critic', None)

    @property
    def _policy(self):
        return getattr(self.controller.planner, 'policy', None)

    def _warm_up(self):
        """Plan once from a zero state, so the first real plan pays no start-up cost."""
        from hlai_ros.cost.base import CostContext
        import torch
        zero = np.zeros(self.task.state_dim, np.float32)
        self.controller.agent.act(zero, CostContext(goal=torch.zeros(2)))
        self.controller.agent.reset()

    def _reconfigure(self, cfg: MpcActorConfig):
        """A planner setting changed: rebuild the planner on the current model."""
        planner = self.controller.planner
        new = planner_config(cfg)
        if new != planner.config:
            self.controller.planner = planner.with_config(**{
                f: getattr(new, f) for f in new.__dataclass_fields__})
            self.controller.agent.planner = self.controller.planner
            self.controller.agent.reset()

    # -- inputs -----------------------------------------------------------------------------
    def _on_episode(self, msg):
        marker = episode_marker(msg)
        if marker is not None and marker.get('event') == 'start':
            self.controller.agent.reset()
            self.goal = None

    @property
    def estop(self) -> bool:
        """Whether the e-stop is latched."""
        return self.latch.engaged

    def _on_estop(self, msg):
        if msg.data:
            if not self.latch.engaged:
                self.get_logger().warning(f'{ESTOP_TOPIC}: e-stop engaged; zero commands until '
                                          '~/release_estop is called')
            self.latch.engage(f'{ESTOP_TOPIC}: True', time.monotonic())
            self._publish_command(None)
        elif self.latch.engaged:
            self.get_logger().warning(
                f'{ESTOP_TOPIC}: False does not release the e-stop; call ~/release_estop',
                throttle_duration_sec=5.0)
        self._publish_diagnostics(force=True)

    def _on_release(self, request, response):
        was = self.latch.engaged
        response.success, response.message = self.latch.release(time.monotonic())
        if was and response.success:
            self.controller.agent.reset()
            self.get_logger().info(response.message)
        self._publish_diagnostics(force=True)
        return response

    def _on_goal(self, msg):
        goal = messages.pose_to_goal(msg)
        frame = msg.header.frame_id.lstrip('/')
        if frame not in ('', WORLD_FRAME) or not np.all(np.isfinite(goal)):
            self.get_logger().warning(f'{GOAL.name}: goal {goal} in frame {frame!r} ignored; '
                                      f"expected finite x, y in frame '{WORLD_FRAME}'",
                                      throttle_duration_sec=1.0)
            return
        self.goal = goal

    def _on_state(self, msg):
        self._state_ns = self.get_clock().now().nanoseconds
        self._stale = False
        try:
            names, values = state_from_message(msg)
            percept = self.task.percept_from_state(names, values)
            if not (np.all(np.isfinite(percept.model_state))
                    and np.all(np.isfinite(percept.goal))):
                raise ValueError('state or goal is not finite')
        except ValueError as exc:
            self.stats['state_faults'] += 1
            self.get_logger().warning(f'{STATE_TOPIC}: {exc}; zero command',
                                      throttle_duration_sec=1.0)
            self._publish_command(None)
            return
        if self.estop:
            self._publish_command(None)
            return
        if self.goal is not None:
            percept = replace(percept, goal=self.goal)
        self._publish_command(self._plan(percept))
        self._publish_diagnostics()

    # -- planning ---------------------------------------------------------------------------
    def _plan(self, percept) -> np.ndarray | None:
        """Plan from a percept; return the action to apply, or None for zero."""
        import torch
        cfg, controller = self.params.config, self.controller
        context = self.task.context(percept)
        start = time.perf_counter()
        controller.planner.cost = self.task.cost(percept.scene)  # as LearnedController.act
        action = controller.agent.act(percept.model_state, context)
        seconds = time.perf_counter() - start
        s = self.stats
        s['plans'] += 1
        s['plan_ms'] = 1e3 * seconds
        s['plan_ms_max'] = max(s['plan_ms_max'], s['plan_ms'])
        plan = controller.last_plan
        if plan is not None:
            self._publish_plan(percept.model_state, plan.actions)
        if seconds <= cfg.budget_s:
            return action
        s['deadline_misses'] += 1
        if not cfg.enforce_deadline:
            return action
        s['fallbacks'] += 1
        self.get_logger().warning(f'plan took {s["plan_ms"]:.0f} ms > deadline '
                                  f'{1e3 * cfg.budget_s:.0f} ms: '
                                  f'{"policy action" if self._policy is not None else "zero"}',
                                  throttle_duration_sec=1.0)
        if self._policy is None:
            return None
        from hlai_ros.actor.agent import Agent
        action = Agent(policy=self._policy, use_planner=False).act(percept.model_state, context)
        controller.agent.previous_action = torch.as_tensor(action)
        return action

    # -- outputs ----------------------------------------------------------------------------
    def _publish_command(self, action: np.ndarray | None) -> None:
        """Publish `action` (A,), or zero velocity for None."""
        if action is None:
            action = np.zeros(self.task.action_dim, np.float32)
            self.stats['zero_commands'] += 1
        stamp = max(self.get_clock().now().nanoseconds, 0)
        self.pub.publish(to_cdr(messages.command(action, self.task.name, stamp),
                                self.command.msgtype))

    def _publish_plan(self, state: np.ndarray, actions) -> None:
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Path as PathMsg
        states = self.controller.planner.predict(state, actions).mean(0).cpu().numpy()
        i, j = self.task.position_indices
        msg = PathMsg()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = PLAN_FRAME[self.task.name]
        for x, y in zip(states[:, i].tolist(), states[:, j].tolist()):
            pose = PoseStamped()
            pose.header = msg.header
            pose.pose.position.x, pose.pose.position.y = float(x), float(y)
            pose.pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.plan_pub.publish(msg)

    def _publish_diagnostics(self, force: bool = False) -> None:
        cfg = self.params.config
        values = dict(self.stats, model=str(self.model_dir), watch=str(self.watch_dir),
                      device=str(self.device),
                      critic=self._critic is not None, policy=self._policy is not None,
                      deadline_ms=round(1e3 * cfg.budget_s, 1), estop=self.estop,
                      stale=self._stale)
        values['plan_ms'] = round(values['plan_ms'], 2)
        values['plan_ms_max'] = round(values['plan_ms_max'], 2)
        if self.estop:
            level, text = ERROR, 'e-stop engaged: zero commands'
        elif self._stale:
            level, text = WARN, f'state older than {cfg.timeout_s:.2f} s: zero commands'
        elif self.stats['reload_error']:
            level, text = WARN, 'a new checkpoint was refused; planning with the old model'
        else:
            level, text = OK, 'planning'
        self.diagnostics.publish(level, text, values, force=force)

    # -- timers -----------------------------------------------------------------------------
    def _watchdog(self):
        """Every control period (node clock): zero command on stale state or e-stop."""
        if self._state_ns is None:
            return  # nothing to command yet (and a lockstep simulator waits for a real answer)
        age_s = (self.get_clock().now().nanoseconds - self._state_ns) * 1e-9
        if age_s > self.params.config.timeout_s:
            if not self._stale:
                self.get_logger().warning(f'{STATE_TOPIC}: no state for {age_s:.2f} s; zero '
                                          'commands until it is fresh again')
            self._stale = True
        if self._stale or self.estop:
            self._publish_command(None)

    def _housekeeping(self):
        """Wall clock: diagnostics at least once a second, hot reload when due."""
        period = self.params.config.reload_period_s
        if period > 0 and time.monotonic() - self._last_reload_check >= period:
            self._last_reload_check = time.monotonic()
            self._reload()
        self._publish_diagnostics()

    def _reload(self):
        """Swap in a new world model between two plans; the critic and policy stay."""
        from hlai_ros.tasks.controllers import LearnedController
        model = self.watcher.poll()
        if model is None:
            if self.watcher.last_error and self.watcher.last_error != self.stats['reload_error']:
                self.stats['reload_error'] = self.watcher.last_error
                self.get_logger().error(f'new checkpoint refused, keeping the old model: '
                                        f'{self.watcher.last_error}')
                self._publish_diagnostics(force=True)
            return
        old = self.controller
        self.controller = LearnedController(self.task, model, old.planner.config,
                                            critic=self._critic, policy=self._policy,
                                            device=self.device)
        self.controller.agent.previous_action = old.agent.previous_action
        self.stats['reloads'] += 1
        self.stats['reload_error'] = ''
        self.get_logger().info(f'reloaded the world model from {self.watch_dir} '
                               f'(reload {self.stats["reloads"]})')
        self._publish_diagnostics(force=True)


def main(args=None):
    """Run the mpc_actor node."""
    spin_node(MpcActorNode, args)


if __name__ == '__main__':
    main()
