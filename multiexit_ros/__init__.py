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
"""multiexit_ros: speed-aware anytime semantic segmentation for ROS 2.

Importing the package needs neither ROS nor PyTorch; the subpackages that need
PyTorch (``model``, ``train``, ``runtime``) import it themselves.
"""

from pathlib import Path
import sys

__version__ = '0.1.0'

PACKAGE_NAME = 'multiexit_ros'


def share_dir() -> Path:
    """Folder holding ``launch/``, ``config/`` and ``models/``.

    In a source checkout, a ``pip install -e .`` or a ``colcon build --symlink-install``
    that is the repository root; in an installed ROS 2 package ``share/multiexit_ros``
    as the ament index knows it; after a plain ``pip install``, the same folder under
    the environment's prefix.
    """
    source = Path(__file__).resolve().parent.parent
    if (source / 'package.xml').is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE_NAME))
    except (ImportError, LookupError):
        return Path(sys.prefix) / 'share' / PACKAGE_NAME


def default_model_path() -> Path:
    """Return the shipped model's checkpoint path (the file may not exist yet)."""
    return share_dir() / 'models' / 'multiexit_camvid.safetensors'
