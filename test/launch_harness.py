"""Stand-ins for launch / launch_ros and a small `ros2 launch` player for test_launch.py.

launch and launch_ros are not on PyPI: ``install`` puts stand-ins that record their
constructor arguments into sys.modules (also on a machine that has the real modules, for
the duration of one test). ``launch_`` plays `ros2 launch FILE name:=value`: declared
defaults filled in, OpaqueFunctions called with those values; ``effective`` layers the
node's ``parameters`` list as launch_ros and the node do (YAML files and dicts in order,
later wins); ``drive`` plays the lifecycle events a LifecycleNode would see.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchDescription(_Recorded):
    pass


class DeclareLaunchArgument(_Recorded):
    pass


class ExecuteProcess(_Recorded):
    pass


class OpaqueFunction(_Recorded):
    pass


class EmitEvent(_Recorded):
    pass


class RegisterEventHandler(_Recorded):
    pass


class LaunchConfiguration(_Recorded):
    pass


class IfCondition(_Recorded):
    pass


class UnlessCondition(_Recorded):
    pass


class Node(_Recorded):
    pass


class LifecycleNode(Node):
    pass


class OnStateTransition(_Recorded):
    pass


class ChangeState(_Recorded):
    pass


def matches_action(target):
    return lambda action: action is target


def install(monkeypatch):
    """Put the stand-ins in sys.modules for the test (monkeypatch undoes it)."""
    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    module("launch", LaunchDescription=LaunchDescription)
    module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
           ExecuteProcess=ExecuteProcess, OpaqueFunction=OpaqueFunction, EmitEvent=EmitEvent,
           RegisterEventHandler=RegisterEventHandler)
    module("launch.substitutions", LaunchConfiguration=LaunchConfiguration)
    module("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition)
    module("launch.events", matches_action=matches_action)
    module("launch_ros")
    module("launch_ros.actions", Node=Node, LifecycleNode=LifecycleNode)
    module("launch_ros.event_handlers", OnStateTransition=OnStateTransition)
    module("launch_ros.events")
    module("launch_ros.events.lifecycle", ChangeState=ChangeState)


def load(name: str):
    path = REPO / "launch" / name
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def launch_(desc, **args):
    """(launch configurations, actions) as `ros2 launch` has them with ``args`` given."""
    entities = desc.args[0]
    declared = [a for a in entities if isinstance(a, DeclareLaunchArgument)]
    configs = {a.args[0]: a.kwargs["default_value"] for a in declared
               if "default_value" in a.kwargs}
    configs.update({k: str(v) for k, v in args.items()})
    assert {a.args[0] for a in declared} <= set(configs), "a required argument is missing"
    context = types.SimpleNamespace(launch_configurations=dict(configs))
    actions = []
    for e in entities:
        actions += e.kwargs["function"](context) if isinstance(e, OpaqueFunction) else [e]
    return configs, actions


def resolve(value, configs):
    """A LaunchConfiguration resolves to its value; a tuple to their text."""
    if isinstance(value, LaunchConfiguration):
        return configs[value.args[0]]
    if isinstance(value, tuple):
        return "".join(resolve(v, configs) for v in value)
    return value


def vvhand_node(actions):
    (node,) = [a for a in actions if isinstance(a, Node) and a.kwargs["package"] == "vvhand"]
    return node


def effective(node) -> dict:
    """The node's parameter values: each YAML file (its /** and node-name sections) and
    dict of ``parameters`` in order, later entries winning."""
    kw = node.kwargs
    names = {"/**", kw["name"], f"/{kw['namespace'].strip('/')}/{kw['name']}".replace("//", "/")}
    out = {}
    for p in kw["parameters"]:
        if isinstance(p, dict):
            out.update(p)
        else:
            for key, section in yaml.safe_load(Path(p).read_text()).items():
                if key in names:
                    out.update(section["ros__parameters"])
    return out


def drive(node, actions, later: tuple[int, ...] = ()) -> str:
    """The state the LifecycleNode ends in: the events emitted at start, each state change
    offered to the registered OnStateTransition handlers (an event per step, start ->
    transition state -> goal, as rcl_lifecycle publishes them), then ``later`` transitions."""
    from lifecycle_msgs.msg import Transition

    steps = {Transition.TRANSITION_CONFIGURE: ("unconfigured", "configuring", "inactive"),
             Transition.TRANSITION_ACTIVATE: ("inactive", "activating", "active"),
             Transition.TRANSITION_DEACTIVATE: ("active", "deactivating", "inactive")}
    handlers = [a.args[0] if a.args else a.kwargs["event_handler"] for a in actions
                if isinstance(a, RegisterEventHandler)]
    state = ["unconfigured"]

    def emit(action):
        change = action.kwargs["event"]
        assert isinstance(change, ChangeState)
        assert change.kwargs["lifecycle_node_matcher"](node)
        start, middle, goal = steps[change.kwargs["transition_id"]]
        assert state[0] == start, f"{change.kwargs['transition_id']} from {state[0]}"
        for before, after in ((start, middle), (middle, goal)):
            state[0] = after
            for h in handlers:
                kw = h.kwargs
                if kw["target_lifecycle_node"] is node and kw.get("start_state", before) == \
                        before and kw.get("goal_state", after) == after:
                    for entity in kw["entities"]:
                        emit(entity)

    for a in actions:
        if isinstance(a, EmitEvent):
            emit(a)
    for transition_id in later:
        emit(EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                         transition_id=transition_id)))
    return state[0]
