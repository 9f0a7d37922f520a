"""The `cost_critic` node: the configurator, and the cost and critic value of the current state.

The configurator (DESIGN.md): the cost profile (`hlai_ros.cost.profile.CostProfile`) is this
node's parameters, ``weights.<term>``, ``enabled.<term>`` for every term of the task's default
profile and ``planner.<setting>`` (horizon, samples, ...). Their values come from the node's
parameter file (config/<task>.yaml, section ``cost_critic``), their defaults from
`Task.default_profile`. Every change is checked as a whole (`CostProfile.with_params`) and
refused with the reason; the profile in effect is published, latched, on ``/hlai/cost_profile``
at start and after every accepted change, and the ``mpc_actor`` plans with what it carries.
``~/reload`` (std_srvs/Trigger) reads ``profile_file``'s ``cost_critic`` section (default
config/<task>.yaml; settings it leaves out get the task's defaults), applies it, reloads the
critic and says what it applied or why it refused.

For every ``/hlai/state`` (mapped by `Task.decode`; the goal is ``/goal_pose`` once one
arrived) it publishes ``/hlai/cost`` (std_msgs/Float32): the cost under the profile in effect
(`hlai_ros.cost.state_cost.StateCost`: `Task.cost` with ``terminal=False``, of the state as one
step of a plan that stays there with zero action); ``/hlai/critic``: the critic's
cost-to-go, when ``model_path`` holds a critic for this task (identity-checked), else silent;
``/diagnostics``: each term's cost, the profile, the critic's status.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger
import torch

from hlai_ros.contract import COST, CRITIC, GOAL, PROFILE, STATE
from hlai_ros.cost.profile import describe_params, profile_changes, profile_digest, read_profile
from hlai_ros.cost.state_cost import StateCost
from hlai_ros.data import messages
from hlai_ros.graph import params_file
from hlai_ros.node_config import CostCriticNodeConfig
from hlai_ros.nodes import convert
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.paths import model_dir
from hlai_ros.tasks import get_task


class CostCriticNode(Node):
    """The configurator, and cost and critic of the current state; see the module."""

    def __init__(self, **kwargs):
        super().__init__('cost_critic', **kwargs)
        self.params = NodeParameters(self, CostCriticNodeConfig)
        cfg = self.params.config
        torch.set_num_threads(cfg.torch_threads)
        self.task = get_task(cfg.task)
        self.model_path = Path(cfg.model_path) if cfg.model_path else model_dir() / cfg.task
        self.default = self.task.default_profile()
        declared = {name: self.declare_parameter(name, value, ParameterDescriptor(
            description=f'Cost profile setting {name} (hlai_ros.cost.profile)',
            dynamic_typing=True)).value for name, value in self.default.to_params().items()}
        try:
            self.profile = self.default.with_params(declared)
        except ValueError as exc:
            raise ValueError(f'node {self.get_name()}: invalid parameters: {exc}') from None
        self.add_on_set_parameters_callback(self._check_profile)
        self.add_post_set_parameters_callback(self._apply_profile)
        self.state_cost = StateCost(self.task, self.model_path)
        self._load_critic()
        self.goal, self.errors, self.last_error = None, 0, ''
        self.last = {'cost': float('nan'), 'critic': float('nan'), 'terms': {}}
        self.profile_pub = self.create_publisher(String, PROFILE.name,
                                                 convert.qos_profile(PROFILE.qos))
        self.cost_pub, self.critic_pub = (self.create_publisher(
            Float32, t.name, convert.qos_profile(t.qos)) for t in (COST, CRITIC))
        for topic, callback in ((GOAL, self._on_goal), (STATE, self._on_state)):
            self.create_subscription(convert.message_class(topic.msgtype), topic.name, callback,
                                     convert.qos_profile(topic.qos))
        self.create_service(Trigger, '~/reload', self._on_reload)
        self.diagnostics = DiagnosticsPublisher(self, 'cost and critic', cfg.task)
        self._publish_profile()

    # -- configurator -------------------------------------------------------------------------
    def _check_profile(self, params: list[Parameter]) -> SetParametersResult:
        """Accept a change of the profile only if the whole new profile is valid."""
        try:
            self.profile.with_params(profile_changes({p.name: p.value for p in params}))
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_profile(self, params: list[Parameter]) -> None:
        """After an accepted change: the new profile is in effect and published."""
        changes = profile_changes({p.name: p.value for p in params})
        if changes:
            self.profile = self.profile.with_params(changes)
            self._publish_profile()

    def _publish_profile(self) -> None:
        self.profile_pub.publish(String(data=self.profile.to_json()))
        self.get_logger().info(f'cost profile {profile_digest(self.profile)}: '
                               f'{self.profile.to_json()}')

    def _on_reload(self, request, response):
        cfg = self.params.config
        path = Path(cfg.profile_file) if cfg.profile_file else params_file(cfg.task)
        try:
            params = read_profile(path, self.default).to_params()
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        results = self.set_parameters_atomically([Parameter(k, value=v)
                                                  for k, v in params.items()])
        if not results.successful:
            response.success, response.message = False, results.reason
            return response
        self._load_critic()
        response.success = True
        response.message = (f'profile from {path}: {describe_params(params)}; critic: '
                            f'{self.state_cost.critic_status}')
        return response

    def _load_critic(self) -> None:
        """Load the critic next to the world model, if there is one for this task."""
        self.state_cost.load_critic()
        if self.state_cost.critic_failed:
            self.get_logger().error(self.state_cost.critic_status)

    # -- inputs -------------------------------------------------------------------------------
    def _on_goal(self, msg) -> None:
        goal = messages.pose_to_goal(msg)
        if np.all(np.isfinite(goal)):
            self.goal = goal

    def _on_state(self, msg) -> None:
        try:
            percept = self.task.decode(*convert.state_from_message(msg))
            if self.goal is not None:
                percept = replace(percept, goal=self.goal)
            cost, terms = self.state_cost.cost(percept, self.profile)
        except ValueError as exc:
            self.errors, self.last_error = self.errors + 1, str(exc)
            self.get_logger().warning(f'{STATE.name}: {exc}', throttle_duration_sec=5.0)
            return self._publish_diagnostics()
        self.last_error = ''
        self.last['cost'], self.last['terms'] = cost, terms
        self.cost_pub.publish(Float32(data=cost))
        value = self.state_cost.critic_value(percept)
        if value is not None:
            self.last['critic'] = value
            self.critic_pub.publish(Float32(data=value))
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        critic = self.state_cost
        values = {'cost': self.last['cost'], 'critic': self.last['critic'],
                  'critic_status': critic.critic_status, 'errors': self.errors,
                  'profile_file': self.params.config.profile_file or 'config/<task>.yaml',
                  'profile_digest': profile_digest(self.profile),
                  'profile': self.profile.to_json()}
        values.update({f'cost.{t}': c for t, c in self.last['terms'].items()})
        if self.last_error or critic.critic_failed:
            level, message = WARN, self.last_error or critic.critic_status
        else:
            level, message = OK, critic.critic_status if critic.critic is None else 'ok'
        self.diagnostics.publish(level, message, values)


def main(args=None):
    """Run the cost/critic node (the configurator)."""
    spin_node(CostCriticNode, args)


if __name__ == '__main__':
    main()
