"""Where the package's shared files (sim assets, models, config, launch) live.

In a source checkout or an editable pip install they are next to the `hlai_ros` package; in a
colcon install they are under `share/hlai_ros`.
"""
from functools import lru_cache
from pathlib import Path
import sys


@lru_cache(maxsize=None)
def share_dir() -> Path:
    """Return the directory holding `sim/`, `models/`, `config/` and `launch/`."""
    source = Path(__file__).resolve().parents[1]
    if (source / 'package.xml').exists() and (source / 'sim').is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('hlai_ros'))
    except Exception:  # noqa: BLE001 - ament index absent or package not registered
        pass
    prefix = Path(sys.prefix) / 'share' / 'hlai_ros'
    if prefix.is_dir():
        return prefix
    raise FileNotFoundError(
        'cannot find the hlai_ros share directory (sim/, models/, config/): '
        f'looked in {source}, the ament index and {prefix}')


def sim_asset(name: str) -> Path:
    """Return the path of a file under `sim/`."""
    return share_dir() / 'sim' / name


def model_dir() -> Path:
    """Return the directory of shipped checkpoints."""
    return share_dir() / 'models'
