"""Closed-loop evaluation: seeded episodes, outcome statistics, and learning on gym envs."""
from hlai_ros.evaluation.gym_learning import GymLearningConfig, GymResults, learn_and_evaluate
from hlai_ros.evaluation.rollouts import Controller, EpisodeRecord, RandomController, run_episode
from hlai_ros.evaluation.statistics import (
                                            ControllerSummary,
                                            mean_interval,
                                            rate_interval,
                                            summarise,
)

__all__ = ['Controller', 'ControllerSummary', 'EpisodeRecord', 'GymLearningConfig', 'GymResults',
           'RandomController', 'learn_and_evaluate', 'mean_interval', 'rate_interval',
           'run_episode', 'summarise']
