"""The README opens with the two set-up commands and the quick start; its tables match the code."""
from pathlib import Path
import re

from hlai_ros.graph import LAUNCH_ARGUMENTS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / 'README.md').read_text()


def test_the_first_screen_is_the_two_commands_then_the_quick_start():
    first_block = README.split('```bash\n', 1)[1].split('```', 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines() if line.startswith('make')] == \
        [['make', 'demo'], ['make', 'test']]
    headings = re.findall(r'^## (.+)$', README, re.M)
    assert headings[0] == 'Quick start'
    quick = README.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    for step in ('make demo', 'hlai run --task cliff --episodes 3 --view', 'hlai collect',
                 'hlai view', 'hlai train', 'hlai eval', 'robot.launch.py'):
        assert step in quick, step
    figure = re.search(r'!\[[^\]]*\]\((docs/figures/[^)]+)\)', quick)[1]
    assert (ROOT / figure).is_file()


def test_the_launch_argument_table_matches_the_graph():
    section = README.split('Arguments of `launch/sim.launch.py`', 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| `('[^`]*')` \| (.+) \|$", section.split('\n\n', 2)[1],
                      re.M)
    assert [(name, eval(default), text) for name, default, text in rows] == [
        (name, default, text) for name, (default, text) in LAUNCH_ARGUMENTS.items()]


def test_foxglove_and_rviz_name_the_stack_topics():
    from hlai_ros.contract import IMAGINED, PLAN
    section = README.split('### Seeing the graph: rerun, Foxglove, RViz', 1)[1].split('\n### ')[0]
    for word in ('Foxglove', 'RViz', PLAN.name, IMAGINED.name, 'hlai view', '127.0.0.1'):
        assert word in section, word
