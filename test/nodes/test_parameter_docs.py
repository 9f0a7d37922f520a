"""docs/parameters.md is generated from the nodes' config dataclasses and kept current."""
from pathlib import Path

from hlai_ros.nodes.parameter_docs import NODES, render


def test_docs_match_the_dataclasses():
    path = Path(__file__).resolve().parents[2] / 'docs' / 'parameters.md'
    assert path.read_text() == render(), (
        'docs/parameters.md is stale: python -m hlai_ros.nodes.parameter_docs > '
        'docs/parameters.md')


def test_every_node_with_parameters_is_documented():
    text = render()
    for node, _ in NODES:
        assert f'## {node}\n' in text
    assert '| `task` | str | (required)' in text or "| `task` | str | `''`" in text
