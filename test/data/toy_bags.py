"""Bags written from the toy world, for the data-path tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from toy_world import ToyWorld

from hlai_ros.data.writer import EpisodeWriter


@dataclass
class WrittenBag:
    """A bag written by `write_toy_bag` and what went into it."""

    path: Path
    world: ToyWorld
    observations: list = field(default_factory=list)
    """Per episode: list of observation dicts (T + 1)."""
    actions: list = field(default_factory=list)
    """Per episode: (T, 2) float32 actions."""
    outcomes: list = field(default_factory=list)


def write_toy_bag(path: Path, episodes: int = 2, steps: int = 4, seed: int = 0,
                  flush_period_s: float = 0.5, close: bool = True) -> WrittenBag:
    """Write `episodes` toy episodes of `steps` steps as the push task into the bag `path`."""
    world = ToyWorld()
    out = WrittenBag(path, world)
    rng = np.random.default_rng(seed)
    writer = EpisodeWriter(path, 'push', world.nominal_camera(), world.proprio_names,
                           world.config.control_hz, flush_period_s, {'policy': 'random'})
    for ep in range(episodes):
        obs, info = world.reset(seed=seed + ep)
        writer.start_episode(ep, seed + ep)
        writer.observation(obs, info)
        seen, acts, total = [obs], [], 0.0
        for _ in range(steps):
            action = rng.uniform(-0.3, 0.3, 2).astype(np.float32)
            writer.action(action)
            obs, reward, terminated, truncated, info = world.step(action)
            writer.observation(obs, info)
            seen.append(obs)
            acts.append(action)
            total += reward
            if terminated:
                break
        writer.end_episode(info['is_success'], info['failure'], total, len(acts))
        out.observations.append(seen)
        out.actions.append(np.array(acts))
        out.outcomes.append((info['is_success'], info['failure'], len(acts)))
    if close:
        writer.close()
    else:
        writer.bag.flush()
    world.close()
    return out
