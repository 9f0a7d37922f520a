"""The world model s[t+1] = G(s[t], a[t], z): a latent-variable ensemble of MLPs.

Shapes: E ensemble members, N samples, T horizon, L window length, S state size, A action size,
Z latent size. States and actions are in physical units (the units perception gives: metres,
radians, m/s); the model normalises internally with statistics fitted on its training data and
stored as buffers, so a checkpoint carries them.
"""
from __future__ import annotations

import torch
from torch import nn

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.ensemble import EnsembleLinear, EnsembleMLP
from hlai_ros.world_model.latent import PosteriorEncoder
from hlai_ros.world_model.normalizer import Normalizer
from hlai_ros.world_model.time_loop import activation_code, time_loop


def default_device() -> torch.device:
    """Return CUDA when it is present, else the CPU."""
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


_INPLACE = {nn.SiLU: torch.nn.functional.silu, nn.ReLU: torch.nn.functional.relu,
            nn.ELU: torch.nn.functional.elu}


def _activate(act: nn.Module, h: torch.Tensor, inplace: bool) -> torch.Tensor:
    """act(h), overwriting h when allowed and the activation has an in-place form."""
    fn = _INPLACE.get(type(act)) if inplace else None
    return fn(h, inplace=True) if fn is not None else act(h)


class WorldModel(nn.Module):
    """Ensemble of E dynamics MLPs predicting the normalised state change from (s, a, z).

    Implements `hlai_ros.world_model.protocol.Dynamics`. All members are evaluated in one
    batched call (EnsembleLinear, torch.baddbmm), never in a Python loop over members.
    """

    def __init__(self, config: WorldModelConfig):
        """Build the networks of `config`; the normalisers start as the identity."""
        super().__init__()
        c = config
        self.config = c
        self.state_dim, self.action_dim = c.state_dim, c.action_dim
        self.latent_dim, self.ensemble_size = c.latent_dim, c.ensemble_size
        s, a, z = c.state_dim, c.action_dim, c.latent_dim
        self.input_norm = Normalizer(s + a)
        self.delta_norm = Normalizer(s)
        self.next_norm = Normalizer(s)
        self.register_buffer('frame', self._frame_matrix(c), persistent=False)
        self.dynamics = EnsembleMLP(c.ensemble_size, s + a + z, c.hidden_sizes, s, c.activation)
        self.encoder = (PosteriorEncoder(c.ensemble_size, 2 * s + a, z, c.encoder_hidden,
                                         c.activation) if z > 0 else None)
        if c.predict_reward:
            self.reward_norm = Normalizer(1)
            self.reward_head = EnsembleMLP(c.ensemble_size, s + a, c.hidden_sizes, 1,
                                           c.activation)
        else:
            self.reward_norm = None
            self.reward_head = None

    @staticmethod
    def _frame_matrix(c: WorldModelConfig) -> torch.Tensor | None:
        """The linear map F with inputs = [s, a] @ F (config.frame_*), or None for the identity."""
        if not c.frame_points:
            return None
        n = c.state_dim + c.action_dim
        f = torch.eye(n)
        origin = c.frame_origin
        for i, p in enumerate(c.frame_points):
            f[origin[i % len(origin)], p] = -1.0  # column p: s[p] - s[origin]
        if not c.frame_keep_origin:
            f[:, list(origin)] = 0.0
        return f

    def _inputs(self, sa: torch.Tensor) -> torch.Tensor:
        """The dynamics' raw inputs from [s, a] (..., S + A): points relative to the frame."""
        return sa if self.frame is None else torch.matmul(sa, self.frame)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.delta_norm.mean.device

    # ---- fitting the normalisers -------------------------------------------------------------

    @torch.no_grad()
    def fit_normalizers(self, states: torch.Tensor, actions: torch.Tensor,
                        next_states: torch.Tensor, rewards: torch.Tensor | None = None) -> None:
        """Fit input/output statistics on transitions: states (M, S), actions (M, A), next (M, S).

        The floor on the delta scale (1 % of the state's spread) keeps a dimension that barely
        moves from dominating the normalised loss.
        """
        self.input_norm.fit(self._inputs(torch.cat([states, actions], dim=-1)))
        state_std = states.std(dim=0, unbiased=False) if states.shape[0] > 1 else None
        floor = None if state_std is None else 1e-2 * state_std
        self.delta_norm.fit(next_states - states, relative_floor=floor)
        self.next_norm.fit(next_states)
        if self.reward_norm is not None:
            if rewards is None:
                raise ValueError('config.predict_reward is True but no rewards were given')
            self.reward_norm.fit(rewards.reshape(-1, 1))

    # ---- shapes ------------------------------------------------------------------------------

    def _members(self, x: torch.Tensor, size: int, name: str) -> torch.Tensor:
        """Return x as (E, N, size), broadcasting (N, size) over the members."""
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        if x.ndim != 3 or x.shape[0] != self.ensemble_size or x.shape[-1] != size:
            raise ValueError(f'{name} must have shape (N, {size}) or ({self.ensemble_size}, N, '
                             f'{size}), got {tuple(x.shape)}')
        return x

    # ---- the protocol ------------------------------------------------------------------------

    def next(self, s: torch.Tensor, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Predict the next state: s (E, N, S), a (E, N, A), z (E, N, Z) -> (E, N, S).

        (N, ...) inputs are broadcast over the members. Units are those of s.
        """
        s = self._members(s, self.state_dim, 's')
        a = self._members(a, self.action_dim, 'a')
        z = self._members(z, self.latent_dim, 'z')
        x = torch.cat([self.input_norm.normalize(self._inputs(torch.cat([s, a], dim=-1))), z],
                      dim=-1)
        y = self.dynamics(x)
        if self.config.predict_delta:
            return s + self.delta_norm.denormalize(y)
        return self.next_norm.denormalize(y)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw latents from the prior q(z) ∝ exp(-||z||^2 / 2) = N(0, I): -> (E, n, Z)."""
        return torch.randn(self.ensemble_size, n, self.latent_dim, device=self.device,
                           generator=generator)

    def rollout(self, s0: torch.Tensor, actions: torch.Tensor,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Roll out open-loop: s0 (N, S) or (E, N, S), actions (N, T, A) or (E, N, T, A).

        Returns states (E, N, T+1, S) with s0 at index 0, differentiable w.r.t. actions (and
        s0, z, parameters). z (E, N, Z) is held fixed over the horizon; None draws it from the
        prior.
        """
        s = self._members(s0, self.state_dim, 's0')
        if actions.ndim == 3:
            actions = actions.unsqueeze(0).expand(self.ensemble_size, -1, -1, -1)
        if (actions.ndim != 4 or actions.shape[0] != self.ensemble_size
                or actions.shape[1] != s.shape[1] or actions.shape[-1] != self.action_dim):
            raise ValueError(f'actions must have shape ({s.shape[1]}, T, {self.action_dim}) or '
                             f'({self.ensemble_size}, {s.shape[1]}, T, {self.action_dim}), '
                             f'got {tuple(actions.shape)}')
        z = self.sample_z(s.shape[1]) if z is None else self._members(z, self.latent_dim, 'z')
        return self._fused_rollout(s, actions, z)

    def _folded(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[nn.Module]]:
        """The dynamics MLP with the normalisers folded into its first and last layers.

        Returns weights [W_s, W_a, W_z, W_2, ..., W_L] and biases [b_1, ..., b_L] such that
        h1 = s W_s + a W_a + z W_z + b_1 on raw (physical-unit) s and a, and the last layer
        gives the state change (or the next state) in physical units. Differentiable in the
        parameters; the same function as `next`, up to float rounding.
        """
        layers = list(self.dynamics.layers)
        linear = [m for m in layers if isinstance(m, EnsembleLinear)]
        acts = [m for m in layers if not isinstance(m, EnsembleLinear)]
        s, a = self.state_dim, self.action_dim
        w1, b1 = linear[0].weight, linear[0].bias
        mean, std = self.input_norm.mean, self.input_norm.std
        w_sa = w1[:, :s + a] / std.view(1, -1, 1)
        b1 = b1 - torch.matmul((mean / std).view(1, 1, -1), w1[:, :s + a])
        if self.frame is not None:  # inputs = [s, a] @ F: fold F into the first layer too
            w_sa = torch.matmul(self.frame, w_sa)
        out = self.delta_norm if self.config.predict_delta else self.next_norm
        wl = linear[-1].weight * out.std.view(1, 1, -1)
        bl = linear[-1].bias * out.std.view(1, 1, -1) + out.mean.view(1, 1, -1)
        weights = [w_sa[:, :s], w_sa[:, s:], w1[:, s + a:]]
        weights += [m.weight for m in linear[1:-1]] + [wl]
        biases = [b1] + [m.bias for m in linear[1:-1]] + [bl]
        return weights, biases, acts

    def _folded_cached(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[nn.Module]]:
        """`_folded`, computed once and reused while no parameter or buffer changes.

        Reused only when no gradient reaches the parameters (grad disabled, or no parameter
        requires one, as inside the planner's `frozen`); the key is every parameter's and
        buffer's identity, version counter and storage, so an optimizer step,
        `load_state_dict`, a refitted normaliser or a move to another device or dtype
        recomputes it. The cached tensors are ordinary (not inference) tensors, so they serve
        inside and outside `torch.inference_mode` alike.
        """
        stores = self.__dict__.get('_fold_stores')
        if stores is None:  # the modules' parameter and buffer dicts (fixed after __init__)
            stores = self.__dict__['_fold_stores'] = [
                d for mod in self.modules() for d in (mod._parameters, mod._buffers) if d]
        tensors = tuple(t for d in stores for t in d.values() if t is not None)
        if torch.is_grad_enabled() and any(p.requires_grad for p in tensors):
            return self._folded()
        versions = tuple((t._version, t.data_ptr()) for t in tensors)  # .to() swaps .data
        cache = self.__dict__.get('_fold_cache')  # (tensors, versions, folded): held, so the
        if (cache is not None and cache[1] == versions and len(cache[0]) == len(tensors)
                and all(x is y for x, y in zip(cache[0], tensors))):  # ids cannot be reused
            return cache[2]
        with torch.inference_mode(False), torch.no_grad():
            weights, biases, acts = self._folded()
            weights, biases = [w.contiguous() for w in weights], [b.contiguous() for b in biases]
        folded = (weights, biases, acts)
        self.__dict__['_fold_cache'] = (tensors, versions, folded)
        return folded

    def _fused_rollout(self, s: torch.Tensor, actions: torch.Tensor, z: torch.Tensor
                       ) -> torch.Tensor:
        """Open-loop rollout s (E, N, S), actions (E, N, T, A), z (E, N, Z) -> (E, N, T+1, S).

        The latent's part of the first layer is computed once before the time loop, and the
        normalisers are folded into the weights (cached while the weights do not change and no
        gradient reaches them), so each step is one batched matmul per layer. Without autograd
        the activations run in place, and the model's input (s[t], a[t]) of every step lives in
        one preallocated buffer: the actions are copied in once, each step writes its next
        state straight into the next step's input, and the states are copied out of it once
        (no per-step concatenation, no stack), and the time loop runs in TorchScript
        (`world_model.time_loop`: no Python per step). The arithmetic is the same as with
        autograd.
        """
        return self._rollout_folded(self._folded_cached(), s, actions, z)

    def _rollout_members(self, s0: torch.Tensor, actions: torch.Tensor, z: torch.Tensor,
                         members: tuple[int, ...]) -> torch.Tensor:
        """`rollout` of some members only: (N, S), (N, T, A), (K, N, Z) -> (K, N, T+1, S).

        s0 (N, S), actions (N, T, A) and z (K, N, Z) for the K `members` (indices into the
        ensemble). Each member's states are those `rollout` gives it (the same arithmetic);
        the planner uses it to roll out a subset of the ensemble (`PlannerConfig.members`).
        """
        members = tuple(int(m) for m in members)
        k = len(members)
        if not members or not all(0 <= m < self.ensemble_size for m in members):
            raise ValueError(f'members must be indices in [0, {self.ensemble_size}), '
                             f'got {members}')
        if (s0.ndim != 2 or s0.shape[-1] != self.state_dim or actions.ndim != 3
                or actions.shape[0] != s0.shape[0] or actions.shape[-1] != self.action_dim
                or z.shape != (k, s0.shape[0], self.latent_dim)):
            raise ValueError(f'_rollout_members expects s0 (N, {self.state_dim}), actions (N, '
                             f'T, {self.action_dim}) and z ({k}, N, {self.latent_dim}), got '
                             f'{tuple(s0.shape)}, {tuple(actions.shape)}, {tuple(z.shape)}')
        folded = self._folded_cached()
        if members != tuple(range(self.ensemble_size)):
            cache = self.__dict__.get('_member_cache')
            if cache is None or cache[0] is not folded or cache[1] != members:
                weights, biases, acts = folded
                cached = not (torch.is_grad_enabled() and any(w.requires_grad for w in weights))
                with torch.inference_mode(False), torch.set_grad_enabled(not cached and
                                                                          torch.is_grad_enabled()):
                    index = torch.tensor(members, device=self.device)
                    cache = (folded, members, ([w.index_select(0, index) for w in weights],
                                               [b.index_select(0, index) for b in biases], acts))
                if cached:  # ordinary tensors: usable inside and outside inference mode
                    self.__dict__['_member_cache'] = cache
            folded = cache[2]
        s = s0.unsqueeze(0).expand(k, -1, -1)
        return self._rollout_folded(folded, s, actions.unsqueeze(0).expand(k, -1, -1, -1), z)

    def _rollout_folded(self, folded, s: torch.Tensor, actions: torch.Tensor, z: torch.Tensor
                        ) -> torch.Tensor:
        """The time loop of `_fused_rollout` with given folded weights (`_folded`)."""
        (w_s, w_a, w_z, *hidden_w), biases, acts = folded
        w_sa = torch.cat([w_s, w_a], dim=1)
        zb = torch.baddbmm(biases[0], z, w_z)  # (E, N, H): the latent's part, fixed over time
        delta = self.config.predict_delta
        if not torch.is_grad_enabled():
            e, n, t, a = actions.shape
            size = s.shape[-1]
            x = s.new_empty(t + 1, e, n, size + a)  # step k's input (s[k], a[k]); a[T] unused
            x[:t, :, :, size:] = actions.permute(2, 0, 1, 3)
            x[0, :, :, :size] = s
            time_loop(x, zb, w_sa, hidden_w, biases[1:], activation_code(acts), t, size, delta)
            return x[:, :, :, :size].permute(1, 2, 0, 3).contiguous()
        layers = list(zip(acts, hidden_w, biases[1:]))
        states = [s]
        for a_t in actions.unbind(2):
            h = torch.baddbmm(zb, torch.cat([s, a_t], dim=-1), w_sa)
            for act, w, b in layers:
                h = torch.baddbmm(b, _activate(act, h, False), w)
            s = s + h if delta else h
            states.append(s)
        return torch.stack(states, dim=2)

    def reward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted reward of taking a in s: s (E, N, S) or (N, S), a likewise -> (E, N)."""
        if self.reward_head is None:
            raise ValueError('this world model has no reward head: train it with '
                             'WorldModelConfig(predict_reward=True)')
        s = self._members(s, self.state_dim, 's')
        a = self._members(a, self.action_dim, 'a')
        y = self.reward_head(self.input_norm.normalize(self._inputs(torch.cat([s, a], dim=-1))))
        return self.reward_norm.denormalize(y).squeeze(-1)

    # ---- inference of z ----------------------------------------------------------------------

    def transition_features(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Normalised (s[k], a[k], s[k+1] - s[k]): states (E, N, L+1, S), actions (E, N, L, A).

        Returns (E, N, L, 2S + A).
        """
        sa = self.input_norm.normalize(self._inputs(torch.cat([states[:, :, :-1], actions],
                                                              dim=-1)))
        delta = self.delta_norm.normalize(states[:, :, 1:] - states[:, :, :-1])
        return torch.cat([sa, delta], dim=-1)

    def posterior(self, states: torch.Tensor, actions: torch.Tensor,
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return mean and log std (E, N, Z) of q(z | s[0..L], a[0..L-1]).

        states (N, L+1, S) or (E, N, L+1, S), actions (N, L, A) or (E, N, L, A) in physical
        units; mask (N, L) or (E, N, L) marks real transitions (1) against padding (0).
        """
        if states.ndim == 3:
            states = states.unsqueeze(0).expand(self.ensemble_size, -1, -1, -1)
        if actions.ndim == 3:
            actions = actions.unsqueeze(0).expand(self.ensemble_size, -1, -1, -1)
        if (states.ndim != 4 or actions.ndim != 4 or states.shape[-1] != self.state_dim
                or actions.shape[-1] != self.action_dim
                or states.shape[2] != actions.shape[2] + 1 or actions.shape[2] < 1):
            raise ValueError(f'posterior expects states (N, L+1, {self.state_dim}) and actions '
                             f'(N, L, {self.action_dim}) with L >= 1, got {tuple(states.shape)} '
                             f'and {tuple(actions.shape)}')
        e, n = states.shape[:2]
        if self.encoder is None:
            zeros = states.new_zeros(e, n, 0)
            return zeros, zeros
        return self.encoder(self.transition_features(states, actions), mask)

    def posterior_from_transitions(self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z | a set of transitions), not necessarily consecutive.

        s, s_next (E, N, L, S) or (N, L, S), a (E, N, L, A) or (N, L, A): N sets of L
        transitions each (e.g. the recent steps of the current episode). Returns mean and log
        std (E, N, Z).
        """
        e = self.ensemble_size
        s, a, s_next = (x.unsqueeze(0).expand(e, *x.shape) if x.ndim == 3 else x
                        for x in (s, a, s_next))
        if (s.ndim != 4 or s.shape != s_next.shape or s.shape[:3] != a.shape[:3]
                or s.shape[-1] != self.state_dim or a.shape[-1] != self.action_dim):
            raise ValueError(f'posterior_from_transitions expects s, s_next (N, L, '
                             f'{self.state_dim}) and a (N, L, {self.action_dim}), got '
                             f'{tuple(s.shape)}, {tuple(a.shape)}, {tuple(s_next.shape)}')
        if self.encoder is None:
            zeros = s.new_zeros(e, s.shape[1], 0)
            return zeros, zeros
        sa = self.input_norm.normalize(self._inputs(torch.cat([s, a], dim=-1)))
        return self.encoder(torch.cat([sa, self.delta_norm.normalize(s_next - s)], dim=-1))

    def infer_z(self, states: torch.Tensor, actions: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior mean of z given an observed window (see `posterior`): -> (E, N, Z)."""
        return self.posterior(states, actions, mask)[0]
