"""Parameters of the live ``view`` node (ROS-free, checked before the graph starts)."""
from __future__ import annotations

from dataclasses import dataclass, field

from hlai_ros.tasks.registry import check_task
from hlai_ros.view.session import GRPC_PORT, WEB_PORT

RO = {'read_only': True}


@dataclass(frozen=True)
class ViewNodeConfig:
    """Parameters of the `view` node."""

    task: str = field(default='', metadata=RO)
    """Registered task whose robot's proprioception and command topics are shown (required)."""
    web: bool = field(default=True, metadata=RO)
    """Serve the rerun web viewer on 127.0.0.1 (`grpc_port`, `web_port`)."""
    grpc_port: int = field(default=GRPC_PORT, metadata=RO)
    """Port of the local rerun server the node streams to (127.0.0.1)."""
    web_port: int = field(default=WEB_PORT, metadata=RO)
    """Port of the web viewer page (http://127.0.0.1:PORT)."""
    connect: str = field(default='', metadata=RO)
    """Stream to a running rerun viewer or server instead, e.g. rerun+http://127.0.0.1:9876/proxy."""
    save: str = field(default='', metadata=RO)
    """Also write the view to this .rrd file; empty: no file."""
    image_period_s: float = 0.0
    """Shortest time between two logged images of one camera topic, message time s; 0: all."""

    def __post_init__(self):
        check_task(self.task)
        if not (self.web or self.connect or self.save):
            raise ValueError('the view needs somewhere to go: web, connect or save')
        for name in ('grpc_port', 'web_port'):
            if not 1 <= getattr(self, name) <= 65535:
                raise ValueError(f'{name} must be a TCP port (1..65535), got '
                                 f'{getattr(self, name)}')
        if self.web and self.grpc_port == self.web_port:
            raise ValueError('grpc_port and web_port must differ')
        if self.connect and not self.connect.startswith(('rerun://', 'rerun+http://',
                                                         'rerun+https://')):
            raise ValueError(f'connect must be a rerun+http:// URL, got {self.connect!r}')
        if self.save and not self.save.endswith('.rrd'):
            raise ValueError(f'save must name an .rrd file, got {self.save!r}')
        if not self.image_period_s >= 0:
            raise ValueError(f'image_period_s must be >= 0, got {self.image_period_s}')
