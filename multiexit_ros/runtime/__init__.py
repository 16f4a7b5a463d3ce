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
"""The anytime runtime: speed to budget, exit planning from measured latency, the engine.

The ROS node and the replay evaluator both drive :class:`PerceptionPipeline` and
nothing else::

    pipeline = PerceptionPipeline.from_config(PipelineConfig.from_params(params))
    pipeline.update_speed(12.5, stamp=None, now=t)
    result = pipeline.process(rgb, stamp, now=t)   # result.mask, .exit, .record
"""

from .budget import (blind_distance_budget, frame_budget, speed_budget, SpeedReading,
                     SpeedTracker, table_budget)
from .config import BudgetConfig, EngineConfig, param_specs, ParamSpec, PipelineConfig
from .engine import Engine, EngineRun, InferResult
from .pipeline import FrameResult, load_or_measure_profile, PerceptionPipeline
from .planner import choose_exit, Decision, Plan, Planner
from .profile import LatencyProfile, measure_profile

__all__ = [
    'BudgetConfig',
    'EngineConfig',
    'Decision',
    'Engine',
    'EngineRun',
    'FrameResult',
    'InferResult',
    'LatencyProfile',
    'ParamSpec',
    'PerceptionPipeline',
    'PipelineConfig',
    'Plan',
    'Planner',
    'SpeedReading',
    'SpeedTracker',
    'blind_distance_budget',
    'choose_exit',
    'frame_budget',
    'load_or_measure_profile',
    'measure_profile',
    'param_specs',
    'speed_budget',
    'table_budget',
]
