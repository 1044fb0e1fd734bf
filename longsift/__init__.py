"""longsift: Long Is More for Alignment as a toolkit: load, select, refine, train, generate, judge, report.

Importing longsift stays light: torch, transformers, vllm and datasets load only when a stage needs them.
"""

from longsift.formats import write
from longsift.formats.load import LoadReport, RecordStream, load, load_all
from longsift.records import EvalPrompt, Example, Generation, Message

__version__ = "0.1.0"

__all__ = [
    "EvalPrompt", "Example", "Generation", "LoadReport", "Message", "RecordStream", "load", "load_all", "write",
    "__version__",
]  # fmt: skip
