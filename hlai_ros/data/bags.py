"""Finding rosbag2 bags on disk and the MCAP files that make each one.

Rules:
- a directory holding ``metadata.yaml`` or at least one ``.mcap`` file is one bag; its files
  are read in the order metadata.yaml lists them, then any unlisted ``.mcap`` files in natural
  name order (a bag whose writer never closed has no metadata.yaml);
- a path to a single ``.mcap`` file is a bag of that file;
- directories are searched recursively; sqlite3 bags and file-compressed bags are refused.
"""
from __future__ import annotations

import os
from pathlib import Path
import re

from hlai_ros.data.errors import BagError


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def find_bags(path: str | Path) -> list[Path]:
    """Return every bag (directory or .mcap file) under `path`, sorted.

    Raises:
        FileNotFoundError: `path` does not exist.
        BagError: there is no bag under `path`.

    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'no such bag file or directory: {path}')
    if path.is_file():
        return [path]
    bags = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        if 'metadata.yaml' in filenames or any(
                f.endswith(('.mcap', '.db3', '.mcap.zstd')) for f in filenames):
            bags.append(Path(dirpath))
    if not bags:
        raise BagError(f'{path}: no rosbag2 bags found (no directory with metadata.yaml or '
                       '.mcap files)')
    return sorted(bags, key=lambda p: _natural(str(p)))


def bag_files(bag: Path) -> tuple[list[Path], int | None]:
    """Return (the bag's .mcap files in order, message count from metadata.yaml or None).

    Raises:
        BagError: unsupported storage, unreadable metadata.yaml, or no .mcap file.

    """
    bag = Path(bag)
    if bag.is_file():
        return [bag], None
    listed: list[Path] = []
    expected = None
    meta = bag / 'metadata.yaml'
    if meta.exists():
        import yaml
        try:
            loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
            info = yaml.load(meta.read_text(), Loader=loader)['rosbag2_bagfile_information']
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise BagError(f'{meta}: not a rosbag2 metadata file ({exc!r})') from None
        storage = info.get('storage_identifier', 'mcap')
        if storage != 'mcap':
            raise BagError(f'{bag}: storage {storage!r} is not supported; convert the bag to '
                           'MCAP (`rosbags-convert`) or record with `ros2 bag record -s mcap`')
        if info.get('compression_mode', '').lower() == 'file':
            raise BagError(f'{bag}: file-compressed bags are not supported; decompress first')
        listed = [bag / rel for rel in info.get('relative_file_paths') or []]
        listed = [p for p in listed if p.exists()]
        expected = info.get('message_count')
    others = sorted((p for p in bag.glob('*.mcap') if p not in listed),
                    key=lambda p: _natural(p.name))
    files = listed + others
    if not files:
        if any(bag.glob('*.db3')):
            raise BagError(f'{bag}: a rosbag2 sqlite3 bag; only MCAP storage is supported '
                           '(convert with `rosbags-convert`)')
        raise BagError(f'{bag}: no .mcap file in the bag directory')
    return files, expected
