"""The ROS graph, described without ROS: which nodes run, with what parameters and remaps.

One source of truth for both consumers: the launch files (``launch/*.launch.py``, for ROS 2
installs, turn each `NodeSpec` into a ``launch_ros.actions.Node``) and ``hlai run``
(`hlai_ros.runner`, which starts each `NodeSpec` as a process, or all of them composed in one).
Every node gets the task's parameter file (``config/<task>.yaml``, sections named by node) and
then `NodeSpec.parameters`, which override it. Those are, from weakest to strongest: a user's
parameter file (``hlai run --params-file``, ``params_file:=``), the graph's own settings (from
the options: task, mode, seed, ...), and the ``--set`` overrides; `checked_build` and
`checked_specs` apply each node's own checks to them before anything starts.

The node set, in data-flow order (DESIGN.md): ``sim`` (simulation only) -> ``perception`` ->
``world_model``, ``cost_critic`` (the configurator: the cost profile) -> ``mpc_actor`` ->
command [-> ``command_gate``, the safety layer: always on a robot, and with
the actor in realtime simulation] -> ``sim`` or the robot; ``recorder`` when recording;
``view`` (rerun: camera, state, plan, imagined rollouts, costs, gate) when viewing.
The learned ``mpc_actor`` closes the loop by default; ``scripted_controller`` is a privileged
baseline that reads ground truth, for comparison in simulation only, never in a robot graph.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import json
from pathlib import Path
from typing import Any

from hlai_ros.contract import ACTOR_COMMAND
from hlai_ros.cost.profile import (
    PLANNER_PREFIX,
    PLANNER_SETTINGS,
    PROFILE_PREFIXES,
    PROFILE_SECTION,
    profile_file,
)
from hlai_ros.latent.node_core import model_representation
from hlai_ros.paths import share_dir
from hlai_ros.tasks import check_task, get_task, task_names

LEARNING_NODES = ('world_model', 'cost_critic', 'mpc_actor')
"""Nodes built on the learning core, in this order, between perception and the command."""
GATE_INPUT = ACTOR_COMMAND.name
"""The command_gate's input: where the actor's command goes when a gate guards it."""
PROFILE_NODE = PROFILE_SECTION
"""The configurator: its ``weights.*``, ``enabled.*`` and ``planner.*`` parameters are the
cost profile, which the mpc_actor starts from (``profile_file``) and then follows."""
TARGETS = ('sim', 'robot')
"""Where the graph runs: the PyBullet world in the loop, or a robot's drivers."""
MODES = ('lockstep', 'realtime')
"""Simulator modes."""
CONTROLLERS = ('scripted', 'mpc', 'none')
"""What closes the loop: the privileged scripted baseline, the learned MPC actor, or nothing
(another process commands the robot)."""
ACTOR_REPUBLISH_S = 3.0
"""The lockstep sim's republish period with the mpc_actor, wall-clock s: longer than a plan
takes even on a loaded machine."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph."""

    name: str
    """Node name; also its section in ``config/<task>.yaml``."""
    executable: str
    """Console script under ``lib/hlai_ros``; the module is ``hlai_ros.nodes.<executable>``."""
    role: str
    """What the node does in the architecture (for humans and listings)."""
    parameters: tuple[tuple[str, Any], ...] = ()
    """Parameter overrides applied after the parameter file, in order."""
    remappings: tuple[tuple[str, str], ...] = ()
    """Topic remappings (from, to)."""

    @property
    def module(self) -> str:
        """Python module that runs the node (``python -m``)."""
        return f'hlai_ros.nodes.{self.executable}'

    def ros_arguments(self, params_file: str | Path) -> list[str]:
        """Return the ``--ros-args`` command line of this node's name, parameters and remaps.

        It is what `launch_ros` passes for the same `Node` action.
        """
        args = ['--ros-args', '-r', f'__node:={self.name}', '--params-file', str(params_file)]
        for key, value in self.parameters:
            args += ['-p', f'{key}:={json.dumps(value)}']
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        return args


@dataclass(frozen=True)
class GraphOptions:
    """What to run; the launch arguments and `hlai run` options map onto these."""

    task: str = ''
    """A registered task (`hlai_ros.tasks.task_names`); required."""
    target: str = 'sim'
    """'sim': the PyBullet world in the loop; 'robot': no simulator, the robot's drivers."""
    controller: str = 'mpc'
    """One of `CONTROLLERS`; 'scripted' only in simulation."""
    model: str = ''
    """The mpc_actor's model folder; empty: the shipped models/<task>."""
    online: str = ''
    """Online learning folder: the world_model node writes its checkpoints there and the
    mpc_actor hot-reloads each one; empty: the actor keeps its model (reproducible runs)."""
    mode: str = 'lockstep'
    """Simulator mode: 'lockstep' (one step per command) or 'realtime'."""
    use_sim_time: bool = True
    """Nodes other than the simulator follow /clock (simulation only)."""
    gui: bool = False
    """Open the PyBullet GUI."""
    record: str = ''
    """Bag directory for the recorder; empty: no recorder."""
    view: bool = False
    """Stream the graph into rerun (the ``view`` node; rerun-sdk, the 'view' extra)."""
    episodes: int = 0
    """Episodes the simulator runs; 0: until stopped."""
    seed: int = 0
    """Seed of episode 0."""
    extra_nodes: tuple[str, ...] = ()
    """Names of further nodes the simulator waits for before its first episode (the
    runner's episode monitor)."""
    remappings: tuple[tuple[str, str], ...] = ()
    """Topic remaps (from, to) given to every node, e.g. the contract's camera topics onto a
    robot's driver topics."""
    node_parameters: tuple[tuple[str, str, Any], ...] = ()
    """Further overrides (node name, parameter, value), applied last (``hlai run --set``)."""
    file_parameters: tuple[tuple[str, str, Any], ...] = ()
    """Settings (node name, parameter, value) of a user's parameter file (`read_parameter_file`):
    over the task's file, under the graph's own settings and `node_parameters`."""

    def __post_init__(self):
        check_task(self.task)
        check_choice('target', self.target, TARGETS)
        check_choice('controller', self.controller, CONTROLLERS)
        if self.controller == 'scripted' and self.target == 'robot':
            raise ValueError('the scripted controller reads simulator ground truth; a robot '
                             "graph needs controller 'mpc' or 'none'")
        check_choice('mode', self.mode, MODES)
        check_integer('episodes', self.episodes, 0)
        check_integer('seed', self.seed, 0)
        if self.online and self.controller != 'mpc':
            raise ValueError('online learning feeds the mpc_actor; it needs controller '
                             f"'mpc', got {self.controller!r}")


def check_choice(name: str, value: str, allowed) -> str:
    """Return `value` if it is one of `allowed`, else raise ValueError naming them.

    The one message for a bad choice, from the launch files and ``hlai run`` alike.
    """
    if value not in allowed:
        raise ValueError(f'{name} must be one of {", ".join(allowed)}; got {value!r}')
    return value


def check_integer(name: str, value, minimum: int) -> int:
    """Return `value` (an int or its text) as an int >= `minimum`, else raise ValueError."""
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        number = None
    if number is None or number < minimum or isinstance(value, (bool, float)):
        raise ValueError(f'{name} must be a whole number >= {minimum}; got {value!r}')
    return number


def checked(specs, task: str) -> tuple[NodeSpec, ...]:
    """Return `specs` once each node's own checks accept what it will get.

    That is the task's parameter file, then the overrides; checked before anything starts
    (`hlai_ros.node_config.check_graph`), an integer for a float parameter made a float.

    Raises:
        ValueError: the first node's refusal, naming the node and the reason.

    """
    from hlai_ros.config import load_params
    from hlai_ros.node_config import check_graph
    return check_graph(specs, task, load_params(task))


def params_file(task: str) -> Path:
    """Return the parameter file of `task` (``config/<task>.yaml``)."""
    return share_dir() / 'config' / f'{check_task(task)}.yaml'


def profile_overrides(task: str, node_parameters) -> dict[str, Any]:
    """The cost-profile settings among ``(node, key, value)`` overrides, checked for `task`.

    Empty when they leave the task's profile as it is.

    They are the configurator's (`PROFILE_NODE`) ``weights.*``, ``enabled.*`` and
    ``planner.*`` parameters. The same settings given to the ``mpc_actor`` are refused with
    the name to use instead: the actor has no planner parameters, it plans with the profile.

    Raises:
        ValueError: a misplaced setting, or one the task's profile rejects (named).

    """
    out = {}
    for node, key, value in node_parameters:
        if node == 'mpc_actor' and (key in PLANNER_SETTINGS or key.startswith(PROFILE_PREFIXES)):
            name = key if key.startswith(PROFILE_PREFIXES) else PLANNER_PREFIX + key
            raise ValueError(f'mpc_actor.{key}: the planner settings and cost weights are the '
                             f'cost profile; set {PROFILE_NODE}.{name} instead')
        if node == PROFILE_NODE and key.startswith(PROFILE_PREFIXES):
            out[key] = value
    if out:
        default = get_task(task).default_profile()
        try:
            profile = default.with_params(out)
        except ValueError as exc:  # the configurator's own check, named as check_node names it
            raise ValueError(f'node {PROFILE_NODE}: invalid parameters: {exc}') from None
        if profile.to_params() == default.to_params():
            return {}  # the task's own profile (e.g. a copy of its file): nothing to write
    return out


def build(options: GraphOptions) -> tuple[NodeSpec, ...]:
    """Return the nodes of the graph described by `options`, in start order."""
    o = options
    sim_time = o.use_sim_time and o.target == 'sim'
    common = (('task', o.task), ('use_sim_time', sim_time))
    # The model folder chooses the representation: a latent one makes perception encode
    # frames (/hlai/latent) and the world_model learn its planning dynamics online.
    model = (('model', o.model),) if o.model else ()
    latent = (('model_path', o.model),) if o.model and model_representation(
        get_task(o.task), o.model) == 'latent' else ()
    nodes = [NodeSpec('perception', 'perception', 'perception: RGB-D + proprio -> /hlai/state',
                      common + model)]
    # Profile settings (--set cost_critic.planner.horizon=8) go to the cost_critic as given;
    # the actor and the cost_critic both start from one file of the whole profile, so that
    # they agree from the first plan on, before /hlai/cost_profile arrives.
    overrides = profile_overrides(o.task, o.file_parameters + o.node_parameters)
    profile = (('profile_file', str(profile_file(o.task, overrides))),) if overrides else ()
    # Without an online folder the world_model predicts (surprise, imagined rollouts) but does
    # not train: nothing is written, and the run stays reproducible.
    learn = (('output_dir', o.online), ('learning', True)) if o.online else (
        ('learning', False),)
    nodes.append(NodeSpec('world_model', 'world_model',
                          'world model: surprise, imagination, online learning',
                          common + learn + latent))
    nodes.append(NodeSpec('cost_critic', 'cost_critic',
                          'configurator: cost profile, /hlai/cost, /hlai/critic',
                          common + profile))
    if o.controller == 'mpc':
        # Where the world waits for each command (lockstep simulation) a late plan is still
        # the answer; elsewhere it is replaced (policy, then zero).
        waits = o.target == 'sim' and o.mode == 'lockstep'
        online = (('watch', o.online),) if o.online else ()
        nodes.append(NodeSpec('mpc_actor', 'mpc_actor', 'actor: /hlai/state -> MPC -> command',
                              common + (('model', o.model), ('enforce_deadline', not waits))
                              + profile + online))
    if o.target == 'robot' or (o.controller == 'mpc' and o.mode == 'realtime'):
        nodes = gated(nodes, o.task, sim_time)
    if o.controller == 'scripted':
        nodes.append(NodeSpec('scripted_controller', 'scripted_controller',
                              'privileged baseline: /ground_truth/state -> command',
                              common + (('seed', o.seed),)))
    if o.record:
        nodes.append(recorder_node(o.task, o.record, sim_time))
    if o.view:
        nodes.append(view_node(o.task, sim_time))
    if o.target == 'sim':
        waits = [n.name for n in nodes] + list(o.extra_nodes)
        sim_params = (('task', o.task), ('use_sim_time', False), ('mode', o.mode),
                      ('seed', o.seed), ('episodes', o.episodes), ('gui', o.gui),
                      ('wait_for_nodes', waits))
        if o.controller == 'mpc' and o.mode == 'lockstep':
            # The actor answers every observation; the sim must wait longer than its slowest
            # plan before republishing, or a late answer and the repeated one would both step.
            sim_params += (('republish_period_s', ACTOR_REPUBLISH_S),)
        nodes.insert(0, NodeSpec('sim', 'sim', 'simulator: PyBullet world in the loop',
                                 sim_params))
    if o.remappings:
        nodes = [replace(n, remappings=n.remappings + tuple(o.remappings)) for n in nodes]
    return with_parameters(nodes, o.file_parameters, o.node_parameters)


def with_parameters(specs, file_parameters=(), overrides=()) -> tuple[NodeSpec, ...]:
    """Return `specs` with a parameter file's settings under and `overrides` over their own.

    Both are (node, parameter, value); each node's parameters hold each name once, the
    strongest value: `overrides` (``--set``), then the node's own, then `file_parameters`.
    Settings for nodes that are not in `specs` are ignored in `file_parameters` (one file
    serves several graphs) and refused in `overrides`.

    Raises:
        ValueError: an override for a node that is not in the graph.

    """
    names = [n.name for n in specs]
    unknown = sorted({node for node, _, _ in overrides} - set(names))
    if unknown:
        raise ValueError(f'parameters for nodes {unknown} that are not in the graph {names}')
    out = []
    for spec in specs:
        under = {key: value for node, key, value in file_parameters if node == spec.name}
        over = {key: value for node, key, value in overrides if node == spec.name}
        if under or over:
            spec = replace(spec, parameters=tuple({**under, **dict(spec.parameters),
                                                   **over}.items()))
        out.append(spec)
    return tuple(out)


def read_parameter_file(path: str | Path, task: str) -> tuple[tuple[str, str, Any], ...]:
    """Return the (node, parameter, value) settings of a user's parameter file for `task`.

    The file has the form of ``config/<task>.yaml`` (`hlai_ros.config.read_params_file`);
    a copy of it changes nothing. Each section must name a node of the stack
    (`hlai_ros.node_config.CONFIGS`); a ``task`` in it must be `task`. The values are checked
    where they are used (`checked_build`, `checked_specs`).

    Raises:
        ValueError: starting with ``parameter file PATH:``, naming the node.

    """
    from hlai_ros.config import read_params_file
    from hlai_ros.node_config import CONFIGS
    sections = read_params_file(path, 'parameter file')
    for node, values in sections.items():
        if node not in CONFIGS:
            raise ValueError(f'parameter file {path}: unknown node {node!r}; the nodes: '
                             f'{", ".join(CONFIGS)}')
        if 'task' in values and values['task'] != task:
            raise ValueError(f'parameter file {path}: node {node}: parameter task is '
                             f'{values["task"]!r}, but the graph runs {task!r}')
    return tuple((node, key, value) for node, values in sections.items()
                 for key, value in values.items())


def checked_build(options: GraphOptions, params_file: str | Path = '',
                  notes: list[str] | None = None) -> tuple[NodeSpec, ...]:
    """Return the nodes of `options` (`build`) with the settings of `params_file`, checked.

    What ``hlai run`` and ``sim.launch.py`` / ``robot.launch.py`` start; see `checked_specs`.
    """
    def make(under, over):
        return build(replace(options, file_parameters=under, node_parameters=over))
    return _checked_with_file(make, options.task, options.node_parameters, params_file, notes)


def checked_specs(specs, task: str, params_file: str | Path = '',
                  notes: list[str] | None = None) -> tuple[NodeSpec, ...]:
    """Return the fixed node set `specs` with the settings of `params_file`, checked.

    Each node's own checks (`checked`) accept the graph's settings and overrides first; then
    the file's settings as if they were overrides (so that every value in the file is
    checked, and a refusal names the file); then the graph as it starts, with the file's
    settings under the graph's own (`with_parameters`). A file's settings that the graph's
    own settings or the overrides replace are named in one line appended to `notes`.

    Raises:
        ValueError: the first refusal; one caused by the file starts with
            ``parameter file PATH:`` and names the node and the parameter.

    """
    return _checked_with_file(lambda under, over: with_parameters(specs, under, over), task,
                              (), params_file, notes)


def _checked_with_file(make, task: str, overrides, params_file, notes) -> tuple[NodeSpec, ...]:
    specs = checked(make((), overrides), task)
    if not str(params_file):
        return specs
    names = {s.name for s in specs}
    settings = tuple(s for s in read_parameter_file(params_file, task) if s[0] in names)
    if not settings:
        return specs
    try:
        checked(make((), settings + tuple(overrides)), task)
    except ValueError as exc:
        raise ValueError(f'parameter file {params_file}: {exc}') from None
    specs = checked(make(settings, overrides), task)
    final = {s.name: dict(s.parameters) for s in specs}
    replaced = [f'{node}.{key}' for node, key, value in settings if final[node][key] != value]
    if replaced and notes is not None:
        notes.append(f'parameter file {params_file}: the arguments or --set replace '
                     f'{", ".join(replaced)}')
    return specs


def gated(nodes: list[NodeSpec], task: str, use_sim_time: bool) -> list[NodeSpec]:
    """Return `nodes` followed by the safety layer, the ``command_gate``.

    The actor's command is remapped onto the gate's input (`GATE_INPUT`). Always on a robot
    (whatever commands it); in simulation with the actor in realtime mode. Not in lockstep:
    there every command steps the simulator, and the evaluation compares with the
    pure-Python loop, which has no gate.
    """
    to_gate = ((get_task(task).embodiment.command.name, GATE_INPUT),)
    nodes = [replace(n, remappings=to_gate + n.remappings) if n.name == 'mpc_actor' else n
             for n in nodes]
    return nodes + [NodeSpec('command_gate', 'command_gate',
                             'safety: limits, watchdog, e-stop -> command',
                             (('task', task), ('use_sim_time', use_sim_time)))]


def recorder_node(task: str, output: str, use_sim_time: bool) -> NodeSpec:
    """Return the recorder of the contract's topics of `task` into the bag `output`."""
    return NodeSpec('recorder', 'recorder', 'recorder: topics -> rosbag2 MCAP',
                    (('task', task), ('use_sim_time', use_sim_time), ('output', output)))


def view_node(task: str, use_sim_time: bool) -> NodeSpec:
    """Return the live view of the graph of `task` (rerun; `hlai_ros.nodes.view`)."""
    return NodeSpec('view', 'view', 'view: topics -> rerun (web viewer on 127.0.0.1)',
                    (('task', task), ('use_sim_time', use_sim_time)))


# -- launch files ---------------------------------------------------------------------------
PARAMS_FILE_ARGUMENT = ('', 'a ROS 2 parameter file (<node>: ros__parameters: ..., as '
                            "config/<task>.yaml) over the task's config/<task>.yaml; the other "
                            'arguments win over it; checked before any node starts; empty: none')
"""``params_file:=`` of every launch file, (default, description); ``hlai run --params-file``."""
LAUNCH_ARGUMENTS = {
    'task': ('', 'the task: one of ' + ', '.join(task_names())),
    'use_sim_time': ('true', 'nodes follow /clock (simulation)'),
    'gui': ('false', 'open the PyBullet GUI'),
    'record': ('', 'bag directory to record into; empty: no recorder'),
    'controller': ('mpc', "mpc (learned), scripted (privileged baseline) or none"),
    'model': ('', 'model folder of the mpc_actor; empty: the shipped models/<task>'),
    'online': ('', 'online learning folder: world_model writes checkpoints there, the '
                   'mpc_actor hot-reloads them; empty: off'),
    'mode': ('lockstep', 'simulator mode: lockstep or realtime'),
    'episodes': ('0', 'episodes the simulator runs; 0: until stopped'),
    'seed': ('0', 'seed of episode 0'),
    'view': ('false', 'stream the graph into rerun: the web viewer on http://127.0.0.1:9090 '
                      '(needs the view extra, rerun-sdk)'),
    'wait_for': ('', 'comma-separated names of nodes started elsewhere (e.g. recorder, from '
                     'record.launch.py) that the simulator waits for before its first '
                     'episode, so they miss none of it; empty: only its own graph'),
}
"""Launch arguments of sim.launch.py: name -> (default, description)."""


def check_flag(name: str, text: str) -> bool:
    """Return the launch argument `text` ('true', 'false', ...) as a bool, else ValueError."""
    if str(text).lower() in ('true', '1', 'yes', 'on'):
        return True
    if str(text).lower() in ('false', '0', 'no', 'off', ''):
        return False
    raise ValueError(f'{name} must be true or false; got {text!r}')


def options_from_launch(values: dict[str, str], target: str = 'sim',
                        remappings: tuple[tuple[str, str], ...] = ()) -> GraphOptions:
    """Return the `GraphOptions` of launch arguments (strings, as `ros2 launch` gives).

    Raises:
        ValueError: an unknown or missing task (listing the known ones, `check_task`), or
            another invalid value.

    """
    get = lambda k: values.get(k, LAUNCH_ARGUMENTS[k][0])  # noqa: E731
    return GraphOptions(task=get('task'), target=target, controller=get('controller'),
                        model=get('model'), online=get('online'),
                        mode=get('mode'),
                        use_sim_time=check_flag('use_sim_time', get('use_sim_time')),
                        gui=check_flag('gui', get('gui')), record=get('record'),
                        view=check_flag('view', get('view')),
                        episodes=check_integer('episodes', get('episodes'), 0),
                        seed=check_integer('seed', get('seed'), 0),
                        extra_nodes=tuple(n.strip() for n in get('wait_for').split(',')
                                          if n.strip()),
                        remappings=tuple(remappings))


def launch_node_arguments(spec: NodeSpec, task: str) -> dict[str, Any]:
    """Return the keyword arguments of ``launch_ros.actions.Node`` for `spec`.

    The same executable, name, parameter file, overrides and remaps as
    `NodeSpec.ros_arguments`.
    """
    return {'package': 'hlai_ros', 'executable': spec.executable, 'name': spec.name,
            'output': 'screen', 'parameters': [str(params_file(task)), dict(spec.parameters)],
            'remappings': [tuple(r) for r in spec.remappings]}


_CALM = []


def calm_teardown() -> None:
    """In the launching process (``ros2 launch``): a second Ctrl-C during its exit is quiet.

    After the first Ctrl-C every node stops within ~0.1 s and the launcher exits; a terminal's
    impatient second Ctrl-C then lands in the launcher's own exit hooks (torch's finalisers,
    concurrent.futures' thread shutdown: torch comes in with the tasks) and Python prints an
    "Exception ignored ... KeyboardInterrupt" traceback, although nothing is left to stop. Here
    such a KeyboardInterrupt in an exit hook is dropped (every other unraisable error is still
    printed) and SIGINT is ignored once the atexit hooks run. Registered once; the nodes' own
    processes handle their signals in `hlai_ros.nodes.spin`.
    """
    if _CALM:
        return
    import atexit
    import signal
    import sys
    import threading

    def ignore_sigint() -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    report = sys.unraisablehook

    def unraisable(info) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):
            report(info)
    atexit.register(ignore_sigint)
    sys.unraisablehook = unraisable
    _CALM.append(True)
