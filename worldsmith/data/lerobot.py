"""LeRobotDataset v3.0 (written and read) and v2.x (read): the public entry points in one place.

The layout and column encoding are in `layout.py`, the streaming writer in `writer.py`, the reader
in `reader.py`, the incremental mp4 encoder in `mp4.py`.
"""

from worldsmith.data.layout import CODEBASE_VERSION, DatasetError
from worldsmith.data.reader import EpisodeRecord, LeRobotDataset, is_dataset
from worldsmith.data.writer import DatasetWriter, WriterConfig, write_dataset

__all__ = ["CODEBASE_VERSION", "DatasetError", "DatasetWriter", "EpisodeRecord", "LeRobotDataset", "WriterConfig",
           "is_dataset", "write_dataset"]
