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
"""Parameter names agree across the code, config/perception.yaml, the launch file and README."""

import array
import ast
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import REPO
from multiexit_ros.docs import (render_parameter_table, render_topic_table, render_yaml,
                                replace_section, yaml_value)
from multiexit_ros.errors import ConfigError
from multiexit_ros.messages import SPEED_TYPES
from multiexit_ros.node_config import (describe_constraints, node_param_specs, NodeConfig,
                                       RUNTIME_PARAMETERS, split_params)
from multiexit_ros.runtime import PipelineConfig

SPECS = node_param_specs()
NAMES = [s.name for s in SPECS]
YAML_PATH = REPO / 'config' / 'perception.yaml'
LAUNCH_PATH = REPO / 'launch' / 'perception.launch.py'
REGENERATE = 'regenerate with: python -m multiexit_ros.docs yaml > config/perception.yaml'


def flatten(tree, prefix=''):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f'{prefix}{key}.'))
        else:
            out[prefix + key] = value
    return out


def yaml_params():
    data = yaml.safe_load(YAML_PATH.read_text(encoding='utf-8'))
    assert list(data) == ['/**'] and list(data['/**']) == [
        'ros__parameters']
    return flatten(data['/**']['ros__parameters'])


def test_names_are_unique_and_node_names_do_not_shadow_pipeline_names():
    assert len(NAMES) == len(set(NAMES))
    assert RUNTIME_PARAMETERS <= set(NAMES)
    assert all(s.description for s in SPECS)


def test_yaml_has_every_parameter_with_its_default_and_type():
    params = yaml_params()
    assert list(params) == NAMES
    for spec in SPECS:
        value = params[spec.name]
        assert value == spec.default, spec.name
        # ROS 2 keeps YAML types: 1 would be an integer for a double parameter
        assert type(value) is spec.type, spec.name
        if spec.type is list:
            assert all(type(v) is float for v in value), spec.name


def test_yaml_is_the_generated_file_with_a_comment_per_parameter():
    text = YAML_PATH.read_text(encoding='utf-8')
    assert text == render_yaml(), REGENERATE
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if ':' in line and not line.lstrip().startswith('#') and \
                line.split(':')[0].strip() not in ('perception_node', 'ros__parameters',
                                                   'budget', 'engine'):
            assert lines[i - 1].lstrip().startswith('#'), line


def test_yaml_defaults_equal_the_dataclass_defaults():
    node, pipeline = split_params(yaml_params())
    assert node == NodeConfig() and pipeline == PipelineConfig()


def launch_arguments():
    tree = ast.parse(LAUNCH_PATH.read_text(encoding='utf-8'))
    declared, overrides = {}, None
    for item in ast.walk(tree):
        if isinstance(item, ast.Call) and getattr(item.func, 'id', '') == \
                'DeclareLaunchArgument':
            default = next((k.value for k in item.keywords if k.arg == 'default_value'), None)
            declared[item.args[0].value] = default
        if isinstance(item, ast.Assign) and getattr(item.targets[0], 'id', '') == \
                'PARAMETER_ARGUMENTS':
            overrides = ast.literal_eval(item.value)
    return declared, overrides


def test_launch_arguments_agree_with_the_parameters():
    declared, overrides = launch_arguments()
    assert set(overrides) <= set(NAMES)
    assert set(declared) == set(overrides) | {'image_topic', 'speed_topic', 'config_file',
                                              'use_sim_time', 'node_name', 'namespace'}
    for name in overrides:  # empty keeps the YAML's value
        assert isinstance(declared[name], ast.Constant) and declared[name].value == ''
    config_default = ast.dump(declared['config_file'])
    assert 'FindPackageShare' in config_default and "'perception.yaml'" in config_default


def test_setup_installs_launch_and_config_files():
    text = (REPO / 'setup.py').read_text(encoding='utf-8')
    assert "share('launch', '*.launch.py')" in text and "share('config', '*.yaml')" in text


def test_split_params_accepts_ros_double_arrays_and_rejects_bad_values():
    values = {s.name: s.default for s in SPECS}
    values['budget.table_speeds_mps'] = array.array('d', [0.0, 10.0, 20.0, 40.0])
    values['speed_type'] = 'std_msgs/Float64'
    node, pipeline = split_params(values)
    assert pipeline.budget.table_speeds_mps == [0.0, 10.0, 20.0, 40.0]
    assert node.speed_type == 'std_msgs/msg/Float64'
    for name, bad in [('image_transport', 'theora'), ('speed_type', 'sensor_msgs/msg/Imu'),
                      ('precision', 'fp8'), ('diagnostics_period_s', 0.0)]:
        with pytest.raises(ConfigError, match=name.split('_')[0]):
            split_params({**values, name: bad})


def test_constraint_texts():
    by_name = {s.name: s for s in SPECS}
    assert describe_constraints(by_name['speed_type']).startswith('one of: std_msgs')
    assert describe_constraints(by_name['budget.blind_distance_m']) == 'in [0.01, 100.0]'
    assert describe_constraints(by_name['budget.table_speeds_mps']).startswith('each in')
    assert describe_constraints(by_name['model_path']) == ''
    assert by_name['speed_type'].choices == list(SPEED_TYPES)
    assert yaml_value('a "b"') == '"a \\"b\\""' and yaml_value([1, 2]) == '[1.0, 2.0]'


def test_readme_tables_match_the_code():
    text = (REPO / 'README.md').read_text(encoding='utf-8')
    expected = replace_section(replace_section(text, 'parameters', render_parameter_table()),
                               'topics', render_topic_table())
    assert text == expected, 'regenerate with: python -m multiexit_ros.docs readme'
    for name in NAMES:
        assert f'| `{name}` |' in text


def test_package_xml_lists_what_the_node_and_launch_file_import():
    root = ET.parse(REPO / 'package.xml').getroot()
    depends = {e.text for e in root if e.tag in ('exec_depend', 'depend')}
    imported = set()
    for path in (REPO / 'multiexit_ros' / 'node.py', LAUNCH_PATH):
        for item in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(item, ast.ImportFrom) and item.level == 0:
                imported.add(item.module.split('.')[0])
            elif isinstance(item, ast.Import):
                imported |= {a.name.split('.')[0] for a in item.names}
    ros = imported - {'sys', 'json', 'tempfile', 'multiexit_ros'}
    speed_packages = {t.split('/')[0] for t in SPEED_TYPES} - {
        'autoware_vehicle_msgs', 'autoware_auto_vehicle_msgs'}  # optional (see package.xml)
    assert ros | speed_packages <= depends
    assert 'cv_bridge' not in depends
