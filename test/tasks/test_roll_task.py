"""The roll task's own cost terms."""
import torch

from hlai_ros.tasks import get_task


def _states(hand_ball_distance: float) -> torch.Tensor:
    """(E=1, N=1, T+1=4, S=8): the hand at the origin, the ball `hand_ball_distance` along x."""
    states = torch.zeros(1, 1, 4, 8)
    states[..., 0] = 0.5
    states[..., 2] = 0.5 + hand_ball_distance
    return states


def test_gentle_term_counts_the_speed_over_the_free_speed_only_at_the_ball():
    task = get_task('roll')
    bound = max(task.action_high)
    along_x = torch.zeros(1, 3, 2)
    along_x[..., 0] = bound  # full speed along x
    over = ((bound - task.gentle_speed) / bound) ** 2
    at_ball = task._gentle(_states(0.04), along_x, None)
    assert at_ball.shape == (1, 1, 3)
    assert torch.allclose(at_ball, torch.full_like(at_ball, over))
    halfway = task._gentle(_states(task.gentle_contact + task.gentle_band / 2), along_x, None)
    assert torch.allclose(halfway, torch.full_like(halfway, over / 2))
    assert task._gentle(_states(0.2), along_x, None).abs().max() == 0  # far: free to move
    slow = along_x * (0.9 * task.gentle_speed / bound)  # a slow push at the ball is free
    assert task._gentle(_states(0.04), slow, None).abs().max() == 0
    assert 0 < task.gentle_speed < bound


def test_gentle_term_is_weighted_in_the_task_profile():
    profile = get_task('roll').default_profile()
    assert profile.terms['gentle'].weight > 0 and profile.terms['gentle'].enabled


def test_run_out_assumes_the_slowest_stopping_ball_of_the_world():
    from hlai_ros.sim.panda import load_scene_file
    from hlai_ros.sim.roll import rolling_deceleration
    ball = load_scene_file('roll.yaml')['ball']
    slowest = rolling_deceleration(min(ball['rolling_friction']), max(ball['radius']))
    assert 0 < get_task('roll').runout_deceleration <= slowest
