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
"""Pipeline configuration: flat dotted parameters, YAML, validation and parameter specs."""

import pytest
import yaml

from multiexit_ros.errors import ConfigError
from multiexit_ros.runtime import BudgetConfig, param_specs, PipelineConfig


def test_defaults_round_trip_through_flat_params():
    config = PipelineConfig()
    params = config.to_params()
    assert params['budget.policy'] == 'blind_distance' and params['device'] == 'cuda'
    assert PipelineConfig.from_params(params) == config


def test_flat_and_nested_params_give_the_same_config():
    flat = PipelineConfig.from_params({'device': 'cpu', 'budget.policy': 'table',
                                       'budget.table_speeds_mps': [0, 10],
                                       'budget.table_budgets_s': [0.1, 0.05]})
    nested = PipelineConfig.from_params({'device': 'cpu', 'budget': {
        'policy': 'table', 'table_speeds_mps': [0, 10], 'table_budgets_s': [0.1, 0.05]}})
    assert flat == nested
    assert flat.budget.table_speeds_mps == [0.0, 10.0]
    assert isinstance(flat.budget.table_speeds_mps[0], float)


def test_ints_are_accepted_for_floats():
    config = PipelineConfig.from_params({'budget.blind_distance_m': 3})
    assert config.budget.blind_distance_m == 3.0
    assert isinstance(config.budget.blind_distance_m, float)


@pytest.mark.parametrize('params, match', [
    ({'devise': 'cpu'}, 'unknown pipeline parameter'),
    ({'budget.speed': 1.0}, 'unknown pipeline parameter'),
    ({'channels_last': 'yes'}, 'channels_last must be bool'),
    ({'fixed_exit': 1.5}, 'fixed_exit must be int'),
    ({'fixed_exit': True}, 'fixed_exit must be int'),
    ({'latency_quantile': '0.9'}, 'latency_quantile must be float'),
    ({'latency_quantile': 1.5}, r'outside \[0.0, 1.0\]'),
    ({'precision': 'int8'}, 'choose one of'),
    ({'when_none_fits': 'wait'}, 'choose one of'),
    ({'budget.table_speeds_mps': 'fast'}, 'list of numbers'),
    ({'budget.table_budgets_s': [0.1, -0.2, 0.3, 0.4]}, 'budget.table_budgets_s'),
    ({'budget.min_budget_s': 0.5, 'budget.max_budget_s': 0.1}, 'larger than'),
])
def test_bad_params_are_one_line_config_errors(params, match):
    with pytest.raises(ConfigError, match=match) as info:
        PipelineConfig.from_params(params)
    assert '\n' not in str(info.value)


def test_param_specs_describe_every_parameter():
    specs = param_specs(PipelineConfig)
    names = [s.name for s in specs]
    assert names == list(PipelineConfig().to_params())
    assert len(set(names)) == len(names)
    by_name = {s.name: s for s in specs}
    assert by_name['budget.policy'].choices == ['blind_distance', 'table']
    assert by_name['latency_quantile'].range == (0.0, 1.0)
    assert by_name['budget.table_speeds_mps'].type is list
    assert by_name['simulate_latency'].type is bool and by_name['fixed_exit'].type is int
    for spec in specs:
        assert spec.description, spec.name
        assert isinstance(spec.default, spec.type), spec.name
    assert [s.name for s in param_specs(BudgetConfig)][0] == 'policy'


@pytest.mark.parametrize('layout', ['flat', 'nested', 'ros'])
def test_yaml_files_in_every_layout(tmp_path, layout):
    params = {'device': 'cpu', 'policy': 'fixed', 'budget.min_budget_s': 0.01}
    if layout == 'nested':
        params = {'device': 'cpu', 'policy': 'fixed', 'budget': {'min_budget_s': 0.01}}
    elif layout == 'ros':
        params = {'/**': {'ros__parameters': params}}
    path = tmp_path / 'pipeline.yaml'
    path.write_text(yaml.safe_dump(params))
    config = PipelineConfig.from_yaml(path)
    assert (config.device, config.policy, config.budget.min_budget_s) == ('cpu', 'fixed', 0.01)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('device: [unclosed')
    with pytest.raises(ConfigError, match='bad.yaml'):
        PipelineConfig.from_yaml(path)
    path.write_text('budget:\n  policy: sometimes\n')
    with pytest.raises(ConfigError, match='bad.yaml: parameter budget.policy'):
        PipelineConfig.from_yaml(path)
    with pytest.raises(ConfigError, match='cannot read'):
        PipelineConfig.from_yaml(tmp_path / 'missing.yaml')
