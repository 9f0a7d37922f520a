"""The package installs both ways DESIGN.md promises: colcon (ament_python) and pip."""
from pathlib import Path
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'hlai_ros'
    assert root.find('export/build_type').text == 'ament_python'
    deps = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'geometry_msgs', 'nav_msgs', 'std_msgs'} <= deps


def test_colcon_build_installs_the_ros_layout(tmp_path):
    colcon = Path(sys.executable).with_name('colcon')
    assert colcon.exists(), 'colcon is installed by requirements.txt'
    proc = subprocess.run(
        [str(colcon), '--log-base', str(tmp_path / 'log'), 'build',
         '--base-paths', str(ROOT), '--build-base', str(tmp_path / 'build'),
         '--install-base', str(tmp_path / 'install'), '--packages-select', 'hlai_ros'],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = tmp_path / 'install' / 'hlai_ros'
    share = prefix / 'share' / 'hlai_ros'
    assert (share / 'package.xml').exists()
    assert (prefix / 'share/ament_index/resource_index/packages/hlai_ros').exists()
    for folder in ('config', 'sim', 'models', 'launch'):
        assert any((share / folder).iterdir()), f'{folder}/ not installed under share/'
    assert (share / 'config' / 'push.yaml').exists()
    assert (prefix / 'lib' / 'hlai_ros' / 'hlai').exists()


def test_pip_install_provides_the_hlai_command():
    hlai = Path(sys.executable).with_name('hlai')
    exe = str(hlai) if hlai.exists() else shutil.which('hlai')
    assert exe, 'the hlai console script is installed'
    out = subprocess.run([exe, '--help'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'demo' in out.stdout
