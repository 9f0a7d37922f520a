"""Fixtures of the data-path tests: a toy world and bags written from it."""
from __future__ import annotations

from pathlib import Path

import pytest
from toy_bags import WrittenBag, write_toy_bag


@pytest.fixture
def toy_bag(tmp_path) -> WrittenBag:
    """Return a closed bag of two toy episodes of four steps."""
    return write_toy_bag(tmp_path / 'bags' / 'toy')


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    """Return a private episode cache directory."""
    return tmp_path / 'cache'
