# Copyright 2026 The multiexit_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""node.py's wiring, driven through a stand-in for rclpy (see fake_rclpy.py)."""

import ast
import re
import sys

import numpy as np
import pytest

from conftest import REPO
import fake_rclpy
from msgs_helpers import header, image
from multiexit_ros.node_config import node_param_specs, RUNTIME_PARAMETERS
from node_fixtures import FAST, tiny_checkpoint

H, W = 32, 48
RGB = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def node_module(monkeypatch):
    return fake_rclpy.install(monkeypatch)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return str(tiny_checkpoint(tmp_path_factory.mktemp('model')))


def started(node_module, model, **overrides):
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, speed_type='std_msgs/msg/Float32',
                                     **overrides)
    node = node_module.PerceptionNode()
    node.start()
    return node


def by_topic(items, topic):
    (item,) = [i for i in items if getattr(i, 'topic', getattr(i, 'topic_name', None)) == topic]
    return item


def test_every_spec_is_declared_with_type_range_and_read_only(node_module):
    node = node_module.PerceptionNode()
    specs = node_param_specs()
    assert list(node.params) == [s.name for s in specs]
    for spec in specs:
        desc = node.descriptors[spec.name]
        assert desc.description == spec.description and desc.name == spec.name
        assert desc.read_only == (spec.name not in RUNTIME_PARAMETERS)
        assert node.params[spec.name] == spec.default
        if spec.range is not None and spec.type is float:
            (rng,) = desc.floating_point_range
            assert (rng.from_value, rng.to_value) == spec.range
        if spec.range is not None and spec.type is int:
            (rng,) = desc.integer_range
            assert (rng.from_value, rng.to_value) == spec.range
        if spec.choices:
            assert all(c in desc.additional_constraints for c in spec.choices)


def test_start_wires_topics_qos_and_callback_groups(node_module, model):
    node = started(node_module, model)
    camera, speed = by_topic(node.subscriptions, 'image'), by_topic(node.subscriptions, 'speed')
    assert camera.msg_type.__name__ == 'Image' and speed.msg_type.__name__ == 'Float32'
    assert (camera.qos.reliability, camera.qos.depth) == ('best_effort', 1)
    # best effort: connects to reliable and best-effort speed publishers alike
    assert speed.qos.reliability == 'best_effort'
    (guard,) = node.guards
    groups = [camera.group, speed.group, guard.group]
    assert all(g is not None for g in groups) and len({id(g) for g in groups}) == 3
    assert {p.topic for p in node.publishers} == {'~/mask', '~/color_mask', '/diagnostics'}
    (timer,) = node.timers
    assert timer.period == 1.0 and timer.clock == 'steady'
    assert timer.group is guard.group  # stats() never runs during process()
    assert any('device cpu' in text for level, text in fake_rclpy.Node.LOG if level == 'info')


def test_one_frame_per_wake_and_a_new_wake_while_frames_wait(node_module, model):
    # Processing every waiting frame in one callback would starve /diagnostics (same
    # callback group) while frames keep arriving.
    node = started(node_module, model)
    camera, (guard,) = by_topic(node.subscriptions, 'image'), node.guards
    mask_pub = by_topic(node.publishers, '~/mask')
    handle = node.handler.handle_frame

    def frame_arrives_meanwhile(msg, color=False):
        camera.callback(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=header(sec=9)))
        return handle(msg, color=color)

    node.handler.handle_frame = frame_arrives_meanwhile
    camera.callback(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=header(sec=1)))
    assert guard.triggered == 1
    guard.callback()
    assert len(mask_pub.sent) == 1 and mask_pub.sent[0].header.stamp.sec == 1
    assert node.buffer.pending and guard.triggered == 3  # the arrival, then a new wake
    node.handler.handle_frame = handle
    guard.callback()
    assert len(mask_pub.sent) == 2 and not node.buffer.pending and guard.triggered == 3


def test_misspelled_parameters_are_one_fatal_line_naming_them(node_module, model):
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, speed_type='std_msgs/msg/Float32',
                                     **{'budget.blind_distanse_m': 2.0, 'publish_colour': True,
                                        'qos_overrides./speed.subscription.depth': 5})
    assert node_module.main([]) == 1
    (fatal,) = [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']
    assert 'budget.blind_distanse_m (did you mean budget.blind_distance_m?)' in fatal
    assert 'publish_colour (did you mean publish_color?)' in fatal
    assert 'qos_overrides' not in fatal and '\n' not in fatal


@pytest.mark.parametrize('bad', [{'profile_samples': 0}, {'publish_color': 'yes'},
                                 {'input_height': 1.5}])
def test_a_parameter_of_the_wrong_type_or_out_of_range_is_one_fatal_line(
        node_module, model, bad):
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, **bad)
    assert node_module.main([]) == 1
    (fatal,) = [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']
    assert next(iter(bad)) in fatal and '\n' not in fatal


def test_compressed_transport_checks_opencv_at_start_up(node_module, model, monkeypatch):
    monkeypatch.setitem(sys.modules, 'cv2', None)  # import cv2 fails
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, image_transport='compressed')
    assert node_module.main([]) == 1
    (fatal,) = [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']
    assert 'cv2' in fatal and 'opencv' in fatal.lower()


def test_the_stand_in_refuses_what_rclpy_refuses(node_module):
    msgs = fake_rclpy.modules()
    with pytest.raises(AssertionError, match='Invalid arguments'):
        msgs['sensor_msgs.msg'].Image(colour='red')
    with pytest.raises(AttributeError):
        fake_rclpy.Logger([]).warning_once('text')


def test_latest_frame_wins_and_masks_carry_the_camera_header(node_module, model):
    node = started(node_module, model)
    camera, (guard,) = by_topic(node.subscriptions, 'image'), node.guards
    mask_pub = by_topic(node.publishers, '~/mask')
    color_pub = by_topic(node.publishers, '~/color_mask')
    first, second = header(sec=1, nanosec=0), header(sec=2, nanosec=500)
    node_module.PerceptionNode.NOW_NS = 2 * 10**9 + 10**6
    camera.callback(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=first))
    camera.callback(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=second))
    assert guard.triggered == 2 and node.buffer.dropped == 1
    guard.callback()
    (mask,) = mask_pub.sent
    assert mask.header is second and (mask.height, mask.width) == (H, W)
    assert mask.encoding == 'mono8' and not color_pub.sent  # nobody subscribed
    color_pub.subscribers = 1
    camera.callback(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=first))
    guard.callback()
    assert len(mask_pub.sent) == 2 and color_pub.sent[0].encoding == 'rgb8'
    guard.callback()  # a spurious wake-up finds nothing to do
    assert len(mask_pub.sent) == 2


def test_missing_pytorch_is_one_fatal_line(node_module, model, monkeypatch):
    from multiexit_ros import runtime

    def no_torch(config):
        raise ModuleNotFoundError("No module named 'torch'", name='torch')

    monkeypatch.setattr(runtime.PerceptionPipeline, 'from_config', no_torch)
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, speed_type='std_msgs/msg/Float32')
    assert node_module.main([]) == 1
    (fatal,) = [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']
    assert "missing dependency 'torch'" in fatal and 'pip install' in fatal


@pytest.mark.parametrize('stop', ['KeyboardInterrupt', 'ExternalShutdownException'])
def test_main_exits_cleanly_on_interrupt_and_shutdown(node_module, model, monkeypatch, stop):
    exc = KeyboardInterrupt if stop == 'KeyboardInterrupt' else \
        fake_rclpy.ExternalShutdownException
    monkeypatch.setattr(fake_rclpy.Executor, 'SPIN_RAISES', exc)
    fake_rclpy.Node.OVERRIDES = dict(FAST, model_path=model, speed_type='std_msgs/msg/Float32')
    assert node_module.main([]) == 0
    assert not [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']


def test_main_exits_cleanly_when_interrupted_during_start_up(node_module, monkeypatch):
    # SIGINT (Ctrl-C, ros2 launch shutting down) while the model loads or profiles
    nodes = []

    def interrupted(node):
        nodes.append(node)
        raise KeyboardInterrupt

    monkeypatch.setattr(node_module.PerceptionNode, 'start', interrupted)
    try:
        status = node_module.main([])
    except KeyboardInterrupt:
        pytest.fail('KeyboardInterrupt escaped main()')
    assert status == 0
    (node,) = nodes
    assert node.destroyed and node_module.rclpy.state['shutdown']
    assert not [t for level, t in fake_rclpy.Node.LOG if level == 'fatal']


def test_only_node_py_imports_rclpy():
    offenders = []
    for path in (REPO / 'multiexit_ros').rglob('*.py'):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for item in ast.walk(tree):
            names = [a.name for a in item.names] if isinstance(item, ast.Import) else \
                [item.module or ''] if isinstance(item, ast.ImportFrom) else []
            if any(n.split('.')[0] == 'rclpy' for n in names) and path.name != 'node.py':
                offenders.append(str(path))
    assert not offenders


def test_console_script_resolves_to_node_main(node_module):
    text = (REPO / 'setup.py').read_text(encoding='utf-8')
    (target,) = re.findall(r"'perception_node = ([\w.]+):(\w+)'", text)
    assert target == ('multiexit_ros.node', 'main')
    assert callable(node_module.main)
