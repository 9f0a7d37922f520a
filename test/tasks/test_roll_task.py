"""The roll task's own cost terms."""
import torch

from hlai_ros.tasks import get_task


def _states(hand_ball_distance: float) -> torch.Tensor:
    """(E=1, N=1, T+1=4, S=8): the hand at the origin, the ball `hand_ball_distance` along x."""
    states = torch.zeros(1, 1, 4, 8)
    states[..., 0] = 0.5
    states[..., 2] = 0.5 + hand_ball_distance
    return states


def test_gentle_term_counts_the_command_only_at_the_ball():
    task = get_task('roll')
    full = torch.tensor(task.action_high, dtype=torch.float32).expand(1, 3, 2)
    at_ball = task._gentle(_states(0.04), full, None)
    assert at_ball.shape == (1, 1, 3)
    assert torch.allclose(at_ball, torch.full_like(at_ball, 2.0))  # two components at the bound
    halfway = task._gentle(_states(task.gentle_contact + task.gentle_band / 2), full, None)
    assert torch.allclose(halfway, torch.full_like(halfway, 1.0))
    assert task._gentle(_states(0.2), full, None).abs().max() == 0  # far: free to move
    assert task._gentle(_states(0.04), 0.5 * full, None).max() == 0.5  # quadratic in speed


def test_gentle_term_is_weighted_in_the_task_profile():
    profile = get_task('roll').default_profile()
    assert profile.terms['gentle'].weight > 0 and profile.terms['gentle'].enabled
