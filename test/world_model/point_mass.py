"""A synthetic system for the world-model tests: a point mass of hidden mass."""
import numpy as np


def point_mass_episodes(n_episodes, steps=40, seed=0, masses=(0.4, 2.5), gain=1.0, dt=0.1,
                        damping=0.5, offset=0.0):
    """1-D point mass pushed by a random force; its mass is hidden and differs per episode.

    state (x [m], v [m/s]), action force [N] in [-1, 1]; v' = v + dt (gain u / m - damping v),
    x' = x + dt v'. The mass is drawn log-uniformly from `masses` per episode; episodes start
    within 1 m of x = offset.
    """
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        mass = float(np.exp(rng.uniform(np.log(masses[0]), np.log(masses[1]))))
        s = np.zeros((steps + 1, 2), np.float32)
        s[0] = rng.uniform(-1.0, 1.0, 2) + (offset, 0.0)
        a = rng.uniform(-1.0, 1.0, (steps, 1)).astype(np.float32)
        for t in range(steps):
            v = s[t, 1] + dt * (gain * a[t, 0] / mass - damping * s[t, 1])
            s[t + 1] = (s[t, 0] + dt * v, v)
        r = -(s[1:, 0] ** 2).astype(np.float32)
        episodes.append({'states': s, 'actions': a, 'rewards': r})
    return episodes
