"""ament_python / pip build for hlai_ros."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'hlai_ros'


def tree(folder):
    """data_files entries installing every file under `folder` into share/hlai_ros/folder."""
    entries = []
    for root, _dirs, files in os.walk(folder):
        if files:
            entries.append((os.path.join('share', package_name, root),
                            [os.path.join(root, f) for f in files]))
    return entries


NODES = ['sim', 'perception', 'world_model', 'cost_critic', 'mpc_actor', 'command_gate',
         'recorder', 'scripted_controller', 'view']

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'benchmarks']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ] + tree('sim') + tree('models'),
    install_requires=['setuptools'],
    extras_require={
        'view': ['rerun-sdk==0.41.0'],  # hlai view, hlai run --view, view:=true
        'ray': ['ray[train]==2.60.0'],  # hlai collect/train/eval --ray (hlai_ros.scale)
        'camera': ['fast-simplification==0.2.0'],  # cliff robot_mesh_keep < 1
    },
    zip_safe=True,
    maintainer='hlai_ros developers',
    maintainer_email='dev@hlai-ros.org',
    description='Learned world models and MPC for robots, native to ROS 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': ['hlai = hlai_ros.cli:main'] + [
            f'{n} = hlai_ros.nodes.{n}:main' for n in NODES],
    },
)
