"""The actor: sampling optimizers, the MPC planner, the policy, and the agent around them.

Critic and policy training (`hlai_ros.actor.training`) and their checkpoints
(`hlai_ros.actor.checkpoint`) are imported from their modules.
"""
from hlai_ros.actor.agent import Agent
from hlai_ros.actor.imagination import imagine
from hlai_ros.actor.optimizer import (
                                      OPTIMIZERS,
                                      CEMOptimizer,
                                      MPPIOptimizer,
                                      OptimizerConfig,
                                      OptimizerResult,
)
from hlai_ros.actor.planner import Planner, PlannerConfig, PlanResult, planner_config_from_dict
from hlai_ros.actor.policy import Policy, PolicyConfig, PolicyTrainer

__all__ = [
    'OPTIMIZERS', 'Agent', 'CEMOptimizer', 'MPPIOptimizer', 'OptimizerConfig', 'OptimizerResult',
    'PlanResult', 'Planner', 'PlannerConfig', 'Policy', 'PolicyConfig', 'PolicyTrainer',
    'imagine', 'planner_config_from_dict',
]
