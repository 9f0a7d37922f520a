"""The `cost_critic` node: the task cost of the current state, the critic's value, the weights.

Subscribes to ``/hlai/state`` (mapped to the task's model state by
`hlai_ros.tasks.Task.percept_from_state`) and ``/goal_pose`` (the goal the cost measures
against; until one arrives, the goal carried in the state). For every state it publishes:

- ``/hlai/cost`` (std_msgs/Float32): the task cost (`hlai_ros.tasks.Task.cost`) of the state as
  one step of a plan that stays there with zero action, i.e. the weighted sum of the state terms
  (goal distance, fall and collision barriers of the perceived scene) without the terminal
  bonus. Terms that score actions (effort, smoothness) or ensemble predictions (uncertainty)
  are 0 for a single state.
- ``/hlai/critic`` (std_msgs/Float32): the critic's estimate V(s) of the cost still to come,
  when the model directory (``model_path``, default ``models/<task>``) holds a critic
  checkpoint; without one nothing is published there and the diagnostics say so.
- ``/diagnostics``: the cost of each term, the weights in effect, the critic's status.

The configurator: each cost term of the task has a weight parameter ``weights.<term>``
(``weights.goal``, ``weights.fall``, ...) that may be set at any time; a negative or
non-finite weight, or a term the task does not have, is rejected with the reason. A cost
profile is a parameter file whose ``cost_critic`` section sets ``weights.<term>``
(``profile_file``, default ``config/<task>.yaml``); the ``~/reload`` service
(std_srvs/Trigger) reads it again, applies its weights (terms it leaves out get the task's
built-in defaults) and reloads the critic, so switching profile is setting ``profile_file`` and
calling ``~/reload``. Its response says what it applied, or why it refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Float32, Float32MultiArray
from std_srvs.srv import Trigger
import torch

from hlai_ros.actor.checkpoint import load_critic
from hlai_ros.data import messages
from hlai_ros.contract import GOAL
from hlai_ros.nodes.convert import message_class, state_from_message
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.paths import model_dir, share_dir
from hlai_ros.tasks import get_task

STATE_TOPIC = '/hlai/state'
COST_TOPIC = '/hlai/cost'
CRITIC_TOPIC = '/hlai/critic'
WEIGHT_PREFIX = 'weights.'
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class CostCriticNodeConfig:
    """Parameters of the `cost_critic` node (the weights are `weights.<term>`, see above)."""

    task: str = field(default='push', metadata={'read_only': True})
    """Task whose state layout and cost are used: 'push' or 'cliff'."""
    model_path: str = field(default='', metadata={'read_only': True})
    """Model directory that may hold a critic checkpoint; empty: the shipped models/<task>."""
    profile_file: str = ''
    """Parameter file whose cost_critic weights ~/reload applies; empty: config/<task>.yaml."""
    torch_threads: int = field(default=1, metadata={'read_only': True})
    """Torch intra-op threads."""

    def __post_init__(self):
        if self.task not in ('push', 'cliff'):
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        if self.profile_file and not Path(self.profile_file).is_file():
            raise ValueError(f'profile_file {self.profile_file!r} is not a file')
        if self.torch_threads < 1:
            raise ValueError(f'torch_threads must be >= 1, got {self.torch_threads}')


def check_weight(term: str, value, terms) -> str:
    """Return why `value` cannot be the weight of `term` (one of `terms`), or '' if it can."""
    if term not in terms:
        return f'the task has no cost term {term!r}; its terms are {list(terms)}'
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'{WEIGHT_PREFIX}{term} must be a number, got {value!r}'
    if not math.isfinite(value) or value < 0:
        return f'{WEIGHT_PREFIX}{term} must be a finite number >= 0, got {value}'
    return ''


def profile_weights(path: Path, terms, defaults: dict[str, float]) -> dict[str, float]:
    """Return the weights of a parameter file's ``cost_critic`` section (defaults filled in).

    Accepts ``weights.<term>: w`` keys and a nested ``weights: {<term>: w}`` mapping.

    Raises:
        ValueError: the file is unreadable, not a parameter file, or a weight is invalid.

    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f'cannot read the cost profile {path}: {exc}') from None
    node = raw.get('cost_critic') if isinstance(raw, dict) else None
    section = node.get('ros__parameters') if isinstance(node, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f'{path}: expected a parameter file with a cost_critic: '
                         'ros__parameters: section')
    given = {k[len(WEIGHT_PREFIX):]: v for k, v in section.items()
             if k.startswith(WEIGHT_PREFIX)}
    given.update(section.get('weights') or {})
    weights = dict(defaults)
    for term, value in given.items():
        reason = check_weight(term, value, terms)
        if reason:
            raise ValueError(f'{path}: {reason}')
        weights[term] = float(value)
    return weights


class CostCriticNode(Node):
    """Cost and critic of the current state, and the cost configurator; see the module."""

    def __init__(self, **kwargs):
        super().__init__('cost_critic', **kwargs)
        self.params = NodeParameters(self, CostCriticNodeConfig)
        cfg = self.params.config
        torch.set_num_threads(cfg.torch_threads)
        self.task = get_task(cfg.task)
        self.model_path = Path(cfg.model_path) if cfg.model_path else model_dir() / cfg.task
        self.default_weights = {name: float(self.task.cost_section[name].get('weight', 1.0))
                                for name in self.task.cost_section['terms']}
        weights = {}
        for term, default in self.default_weights.items():
            kind = self.task.cost_section[term].get('kind', term)
            declared = self.declare_parameter(
                WEIGHT_PREFIX + term, default, ParameterDescriptor(
                    description=f"Weight of the task's {term!r} cost term ({kind}), >= 0."))
            weights[term] = declared.value
        bad = [r for r in (check_weight(t, w, weights) for t, w in weights.items()) if r]
        if bad:
            raise ValueError(f'node {self.get_name()}: invalid parameters: {"; ".join(bad)}')
        self._apply_weights({t: float(w) for t, w in weights.items()})
        self.add_on_set_parameters_callback(self._on_set_weights)
        self.critic, self.critic_status = None, ''
        self._load_critic()
        self.goal = None
        self.last = {'cost': float('nan'), 'critic': float('nan'), 'terms': {}}
        self.errors, self.last_error = 0, ''

        self.create_subscription(message_class(GOAL.msgtype), GOAL.name, self._on_goal, LATCHED)
        self.create_subscription(Float32MultiArray, STATE_TOPIC, self._on_state, 10)
        self.cost_pub = self.create_publisher(Float32, COST_TOPIC, 10)
        self.critic_pub = self.create_publisher(Float32, CRITIC_TOPIC, 10)
        self.create_service(Trigger, '~/reload', self._on_reload)
        self.diagnostics = DiagnosticsPublisher(self, 'cost and critic', cfg.task)

    # -- configurator -------------------------------------------------------------------------
    def _on_set_weights(self, params: list[Parameter]) -> SetParametersResult:
        """Accept new weights only if every one of them is valid; apply them together."""
        changes = {}
        for p in params:
            if not p.name.startswith(WEIGHT_PREFIX):
                continue
            term = p.name[len(WEIGHT_PREFIX):]
            reason = check_weight(term, p.value, self.weights)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            changes[term] = float(p.value)
        self._apply_weights(dict(self.weights, **changes))
        return SetParametersResult(successful=True)

    def _apply_weights(self, weights: dict[str, float]) -> None:
        """Make `weights` the weights of the task's cost."""
        section = {k: (dict(v) if isinstance(v, dict) else v)
                   for k, v in self.task.cost_section.items()}
        for term, weight in weights.items():
            section[term]['weight'] = weight
        self.task.cost_section, self.weights = section, dict(weights)

    def _on_reload(self, request, response):
        cfg = self.params.config
        path = (Path(cfg.profile_file) if cfg.profile_file
                else share_dir() / 'config' / f'{cfg.task}.yaml')
        try:
            weights = profile_weights(path, self.weights, self.default_weights)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        results = self.set_parameters([Parameter(WEIGHT_PREFIX + t, value=w)
                                       for t, w in weights.items()])
        refused = [r.reason for r in results if not r.successful]
        if refused:
            response.success, response.message = False, '; '.join(refused)
            return response
        self._load_critic()
        response.success = True
        response.message = (f'weights from {path}: '
                            + ', '.join(f'{t}={w:g}' for t, w in weights.items())
                            + f'; critic: {self.critic_status}')
        return response

    def _load_critic(self) -> None:
        """Load the critic next to the world model, if there is one."""
        self.critic_failed = False
        try:
            self.critic = None if not self.model_path.is_dir() else load_critic(
                self.model_path, expect_state_dim=self.task.state_dim)
        except ValueError as exc:  # CheckpointError: truncated, tampered with, wrong size
            self.critic, self.critic_failed = None, True
            self.critic_status = f'critic in {self.model_path} not loaded: {exc}'
            self.get_logger().error(self.critic_status)
            return
        self.critic_status = (f'critic loaded from {self.model_path}' if self.critic is not None
                              else f'no critic in {self.model_path}; {CRITIC_TOPIC} is silent')

    # -- inputs -------------------------------------------------------------------------------
    def _on_goal(self, msg) -> None:
        goal = messages.pose_to_goal(msg)
        if np.all(np.isfinite(goal)):
            self.goal = goal

    def _on_state(self, msg) -> None:
        try:
            names, values = state_from_message(msg)
            percept = self.task.percept_from_state(names, values)
            cost, terms = self.state_cost(percept)
        except ValueError as exc:
            self.errors, self.last_error = self.errors + 1, str(exc)
            self.get_logger().warn(f'{STATE_TOPIC}: {exc}', throttle_duration_sec=5.0)
            self._publish_diagnostics()
            return
        self.last_error = ''
        self.last['cost'], self.last['terms'] = cost, terms
        self.cost_pub.publish(Float32(data=cost))
        if self.critic is not None:
            goal = percept.goal if self.goal is None else self.goal
            with torch.no_grad():
                value = float(self.critic(torch.as_tensor(percept.model_state)[None],
                                          torch.as_tensor(goal, dtype=torch.float32))[0])
            self.last['critic'] = value
            self.critic_pub.publish(Float32(data=value))
        self._publish_diagnostics()

    def state_cost(self, percept) -> tuple[float, dict[str, float]]:
        """Cost of the percept's state with the weights in effect: (total, {term: cost})."""
        cost = self.task.cost(percept.scene)
        goal = percept.goal if self.goal is None else self.goal
        context = self.task.context(replace(percept, goal=goal))
        s = torch.as_tensor(percept.model_state, dtype=torch.float32)
        # the state as the first of two steps of a plan that stays there: no terminal weight
        states = s.expand(1, 1, 3, -1)
        actions = torch.zeros(1, 2, self.task.action_dim)
        with torch.no_grad():
            terms = {name: float(c[0, 0]) for name, c in
                     cost.per_term(states, actions, context).items()}
        return float(sum(terms.values())), terms

    def _publish_diagnostics(self) -> None:
        values = {'cost': self.last['cost'], 'critic': self.last['critic'],
                  'critic_status': self.critic_status,
                  'profile_file': self.params.config.profile_file or 'config/<task>.yaml',
                  'errors': self.errors}
        values.update({f'cost.{t}': c for t, c in self.last['terms'].items()})
        values.update({WEIGHT_PREFIX + t: w for t, w in self.weights.items()})
        if self.last_error:
            level, message = WARN, self.last_error
        elif self.critic_failed:
            level, message = WARN, self.critic_status
        else:
            level, message = OK, self.critic_status if self.critic is None else 'ok'
        self.diagnostics.publish(level, message, values)


def main(args=None):
    """Run the cost/critic node."""
    spin_node(CostCriticNode, args)


if __name__ == '__main__':
    main()
