"""Pairing states and commands into transitions: the command that answered each state."""
import numpy as np

from hlai_ros.world_model.transitions import TransitionPairing


def test_pairing_forms_transitions_within_an_episode_only():
    pairing = TransitionPairing()
    s0, s1, s2, s3 = (np.full(2, k, np.float32) for k in range(4))
    assert pairing.on_state(s0, 100) is None
    pairing.on_command(np.ones(1), 150)
    s, a, s_next = pairing.on_state(s1, 200)
    assert s.tolist() == s0.tolist() and a.tolist() == [1.0] and s_next.tolist() == s1.tolist()
    assert pairing.on_state(s2, 300) is None  # no command since s1: unknown action
    pairing.on_command(np.zeros(1), 300)
    assert pairing.on_state(s2, 300) is None  # a republished state: the command is kept
    # lockstep race: the answer to s3 arrives before s3 itself, at s3's (simulated) time
    pairing.on_command(np.full(1, 3.0), 400)
    s, a, s_next = pairing.on_state(s3, 400)
    assert s.tolist() == s2.tolist() and a.tolist() == [0.0]  # the answer to s2, not to s3
    pairing.reset()
    assert pairing.on_state(s0, 500) is None  # no transition across an episode boundary
    assert pairing.last_command is None


def test_a_newer_estimate_of_the_same_instant_replaces_the_pending_state():
    pairing = TransitionPairing()
    pairing.on_state(np.zeros(2), 100)
    pairing.on_state(np.ones(2), 100)  # same time, new values
    pairing.on_command(np.full(1, 2.0), 120)
    s, a, _ = pairing.on_state(np.full(2, 5.0), 200)
    assert s.tolist() == [1.0, 1.0] and a.tolist() == [2.0]
