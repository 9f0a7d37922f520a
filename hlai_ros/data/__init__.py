"""The data path: rosbag2 MCAP episode bags, written without rclpy, loaded for training.

- `topics`: the topic contract (names, types, frames), shared with the ROS nodes;
- `writer`: `BagWriter` (flushed MCAP) and `EpisodeWriter` (world steps -> messages);
- `load_episodes` / `load_transitions`: a directory of bags -> time-aligned episodes, from
  `hlai collect` or from a recording of the ROS graph; cut bags load up to the last whole
  message; decoded bags are cached (`cache`);
- `collection`: the parallel collector behind `hlai collect`.
"""
from hlai_ros.contract import TopicNames
from hlai_ros.data.alignment import AlignmentSettings
from hlai_ros.data.cache import clear_cache, default_cache_dir
from hlai_ros.data.episode import Episode, Transitions
from hlai_ros.data.errors import BagError, TruncatedBagWarning
from hlai_ros.data.loader import load_episodes, load_transitions
from hlai_ros.data.writer import BagWriter, EpisodeWriter

__all__ = ['AlignmentSettings', 'BagError', 'BagWriter', 'Episode', 'EpisodeWriter',
           'TopicNames', 'Transitions', 'TruncatedBagWarning', 'clear_cache',
           'default_cache_dir', 'load_episodes', 'load_transitions']
