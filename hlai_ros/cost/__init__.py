"""Cost terms and the critic: what the actor minimises over predicted trajectories."""
from hlai_ros.cost.base import CostContext, CostTerm, check_shapes
from hlai_ros.cost.catastrophe import ObstacleCollisionCost, PlatformFallCost
from hlai_ros.cost.composite import TERM_KINDS, Cost, CostConfig, TermConfig, cost_config_from_dict
from hlai_ros.cost.critic import Critic, CriticConfig, CriticTrainer, td_lambda_targets
from hlai_ros.cost.effort import EffortCost, SmoothnessCost
from hlai_ros.cost.function import FunctionCost
from hlai_ros.cost.goal import GoalCost, relative_to_goal
from hlai_ros.cost.navigation import GeodesicGoalCost
from hlai_ros.cost.reward import RewardCost
from hlai_ros.cost.uncertainty import UncertaintyCost

__all__ = [
    'TERM_KINDS', 'Cost', 'CostConfig', 'CostContext', 'CostTerm', 'Critic', 'CriticConfig',
    'CriticTrainer', 'EffortCost', 'FunctionCost', 'GeodesicGoalCost', 'GoalCost',
    'ObstacleCollisionCost', 'PlatformFallCost', 'RewardCost', 'SmoothnessCost', 'TermConfig',
    'UncertaintyCost', 'check_shapes', 'cost_config_from_dict', 'relative_to_goal',
    'td_lambda_targets',
]
