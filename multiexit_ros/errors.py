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
"""The exception types a user of multiexit_ros can catch.

Every error raised on bad input derives from :class:`MultiExitError` and carries a
one-line message that names what was wrong and with what, so command-line tools and
the ROS node can report it without a traceback.
"""

__all__ = [
    'BagError',
    'CheckpointError',
    'ConfigError',
    'DatasetError',
    'ImageError',
    'MissingDependencyError',
    'MultiExitError',
    'RUNTIME_MODULES',
]

# Top-level modules of the `runtime` extra: a missing one is a set-up problem, not a bug.
RUNTIME_MODULES = frozenset({'torch', 'safetensors', 'cv2', 'rosbags', 'tqdm', 'matplotlib'})


class MultiExitError(Exception):
    """Base class of every error this package raises on bad input."""


class CheckpointError(MultiExitError):
    """A checkpoint file is missing, truncated, corrupt or does not match its metadata."""


class ConfigError(MultiExitError):
    """A configuration value or file is invalid."""


class DatasetError(MultiExitError):
    """A dataset folder is missing, incomplete or holds invalid labels."""


class ImageError(MultiExitError):
    """An image or image message cannot be decoded."""


class BagError(MultiExitError):
    """A recording cannot be read or lacks what is needed."""


class MissingDependencyError(MultiExitError):
    """A Python package of the runtime extra (PyTorch, safetensors, ...) is not installed."""

    @classmethod
    def from_import(cls, err: ModuleNotFoundError):
        """Return the error for a failed import of a runtime module, None for others."""
        top = (err.name or '').split('.')[0]
        if top not in RUNTIME_MODULES:
            return None
        how = "pip install -e '.[runtime]'; on ROS 2: pip install torch==2.13.0 safetensors"
        return cls(f'missing dependency {top!r}; install the runtime extra ({how} rosbags, '
                   f'see README)')
