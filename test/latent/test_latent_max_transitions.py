"""`hlai train --representation latent --max-transitions N`: whole episodes in load order."""
from __future__ import annotations

import json

from test_latent_model import tiny_data
import torch

import hlai_ros.latent.data
import hlai_ros.latent.train as latent_train
from hlai_ros.latent.train import LatentHistory, first_transitions


def test_the_cap_keeps_the_first_whole_episodes_until_the_total_reaches_it():
    data = tiny_data(5)  # 12 transitions an episode
    assert int(data.valid.sum()) == 60
    for cap, episodes in ((1, 1), (12, 1), (13, 2), (24, 2), (25, 3), (60, 5), (10_000, 5)):
        kept = first_transitions(data, cap)
        assert kept.num_episodes == episodes, cap
        assert int(kept.valid.sum()) == 12 * episodes
        assert torch.equal(kept.rgb, data.rgb[:len(kept)])  # a prefix, in load order


def test_hlai_train_latent_passes_the_cap_to_every_stage_and_records_it(tmp_path, monkeypatch,
                                                                        capsys):
    from hlai_ros.cli import main as hlai
    seen = {}

    def fake_train_latent(data, config, out_dir, **kwargs):
        seen['encoder'] = (data.num_episodes, kwargs['metadata'])
        return None, LatentHistory()

    def fake_stage(out, data, failed, settings, metadata=None, progress=True):
        seen['planning'] = (data.num_episodes, len(failed))
        return {}

    monkeypatch.setattr(hlai_ros.latent.data, 'load_dataset', lambda *a, **k: tiny_data(5))
    monkeypatch.setattr(latent_train, 'train_latent', fake_train_latent)
    monkeypatch.setattr(latent_train, 'train_planning', fake_stage)
    assert hlai(['train', '--task', 'cliff', '--representation', 'latent', '--data',
                 str(tmp_path), '--out', str(tmp_path / 'm'), '--max-transitions', '13',
                 '--quiet']) == 0
    episodes, meta = seen['encoder']
    assert episodes == 2 and seen['planning'] == (2, 2)
    assert meta['transitions'] == 24 and meta['max_transitions'] == 13
    assert meta['episodes'] == 2 and meta['loaded_episodes'] == 5
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['transitions'] == 24
