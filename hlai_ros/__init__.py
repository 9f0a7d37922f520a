"""hlai_ros: learned world models and model-predictive control for robots, native to ROS 2.

The core (sim, perception, world_model, cost, actor, data) never imports rclpy; only
`hlai_ros.nodes` knows ROS.
"""
__version__ = '0.1.0'
