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
    'MultiExitError',
]


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
