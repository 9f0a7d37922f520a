"""Pairing live states and commands into transitions ``(s, a, s')`` (ROS-free).

The ``world_model`` node learns from the stream of perceived states and commands of a running
graph. `TransitionPairing` gives the exact rule by which they become transitions.
"""
from __future__ import annotations

import numpy as np

MAX_PENDING_COMMANDS = 64
"""Commands kept while waiting for the next state (older ones are dropped)."""


class TransitionPairing:
    """Turn a stream of states, commands and episode markers into transitions.

    Every input carries the receiver's clock reading when it arrived (nanoseconds; simulated
    time under ``use_sim_time``, where the clock only advances when the world steps). The
    action of the transition from the state received at ``t0`` to the next one received at
    ``t1 > t0`` is the newest command received at a time in ``[t0, t1)``: the command that
    answered the observation at ``t0``, whether it arrived just before or just after that
    state's message (a controller acting on other topics may answer before perception has
    published). With no such command the state only replaces the previous one (an unknown
    action is never learned); a state equal to the previous one, or received at the same time,
    is a republish of the same observation. `reset` (an episode's start or end) drops what is
    pending, so no transition crosses an episode boundary. States (S,) and actions (A,) are
    float32 arrays.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Episode boundary: forget the pending state and commands."""
        self.state: np.ndarray | None = None
        self.time_ns = 0
        self.commands: list[tuple[int, np.ndarray]] = []
        self.last_command: np.ndarray | None = None

    def on_command(self, action: np.ndarray, now_ns: int) -> None:
        """A command was received at `now_ns`."""
        action = np.asarray(action, dtype=np.float32)
        self.commands = self.commands[1 - MAX_PENDING_COMMANDS:] + [(int(now_ns), action)]
        self.last_command = action

    def on_state(self, state: np.ndarray, now_ns: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """A state was received at `now_ns`; return (s, a, s') if it ends a transition."""
        state, now_ns = np.asarray(state, dtype=np.float32), int(now_ns)
        if self.state is not None and (now_ns <= self.time_ns
                                       or np.array_equal(state, self.state)):
            if now_ns <= self.time_ns and not np.array_equal(state, self.state):
                self.state = state  # a newer estimate of the same instant
            return None
        out = None
        if self.state is not None:
            answers = [a for t, a in self.commands if self.time_ns <= t < now_ns]
            if answers:
                out = (self.state, answers[-1], state)
        self.state, self.time_ns = state, now_ns
        self.commands = [(t, a) for t, a in self.commands if t >= now_ns]
        return out
