"""Back-projection agrees with what PyBullet's renderer draws."""
import numpy as np
import pybullet_data
import pytest

from hlai_ros.perception.camera import depth_to_world_points, project_to_pixels
from hlai_ros.sim.base import HlaiWorld, _CameraSpec


class _PlaneWorld(HlaiWorld):
    """A ground plane at z = 0 seen by an oblique, rolled camera."""

    camera_spec = _CameraSpec(eye=(0.5, -0.3, 1.0), target=(0.0, 0.0, 0.0), up=(0.3, 1.0, 0.2))

    def _build(self, options):
        self.bullet.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.bullet.loadURDF('plane.urdf')

    def _proprio(self):
        return np.zeros(0, np.float32)

    def _ground_truth(self):
        return {}


@pytest.mark.parametrize('size', [(64, 64), (128, 96), (640, 480)])
def test_depth_back_projects_onto_the_plane(size):
    world = _PlaneWorld(image_width=size[0], image_height=size[1])
    try:
        obs, _ = world.reset(seed=0)
        camera = world.nominal_camera()
        points = depth_to_world_points(obs['depth'], camera)
        # A pixel's ray missed by half a pixel would put the plane millimetres off z = 0.
        assert np.abs(points[..., 2]).max() < 1e-4
        uv = project_to_pixels(points, camera)
        rows, cols = np.mgrid[0:size[1], 0:size[0]]
        assert np.allclose(uv[..., 0], cols, atol=1e-3)
        assert np.allclose(uv[..., 1], rows, atol=1e-3)
    finally:
        world.close()


def test_wrong_shapes_are_refused():
    world = _PlaneWorld()
    try:
        camera = world.nominal_camera()
        with pytest.raises(ValueError, match='depth image must be 64 x 64'):
            depth_to_world_points(np.zeros((32, 64)), camera)
        with pytest.raises(ValueError, match='mask must be'):
            depth_to_world_points(np.zeros((64, 64)), camera, mask=np.zeros((8, 8), bool))
    finally:
        world.close()
