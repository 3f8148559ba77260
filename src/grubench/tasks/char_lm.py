"""Character-level language modelling on source text of Python's standard library: predict
each next character (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent
networks", trained their char-RNNs on the Linux kernel's source among others).

The corpus: the 38 standard-library modules of :data:`CORPUS_FILES` (their sources, 402,983
characters, all printable ASCII or newline), concatenated in that (sorted) order. It ships with
every CPython, needs no download, and is the same on every Python the project supports: these
are the modules of at least 2,000 characters whose files are byte-identical in CPython
3.10.13, 3.11.7, 3.12.1, 3.13.0 and Debian's 3.11.2 (compared file by file; ``pydoc_data.topics``,
the obvious larger text, changes with every release). Each file's SHA-256 is pinned below; a
Python whose file differs, or that lacks it, fails with a one-line error naming the file, so a
bits-per-character number always refers to the same text.

Splits: contiguous blocks of the corpus, 80/10/10 (train: characters 0 to 322,385, val:
322,386 to 362,683, test: 362,684 to the end), with no overlap. Each block is cut into
non-overlapping windows of ``seq_len + 1`` characters with stride ``seq_len``: the input is the
first ``seq_len`` characters (one-hot over the 96 symbols of :data:`VOCAB`), the target the
same window shifted by one, so every character of a block but its first is predicted exactly
once, with the context of its window only (the state starts at zero in every window).
Training runs in epochs over the training windows (2,518 at ``seq_len=128``), reshuffled on
every pass; ``task.val_size`` and ``task.test_size`` cap how many windows are evaluated.

Worked example (``seq_len=8``: window 254 of the training split, characters 2,032 to 2,040,
in ``_compression.py``)::

    characters  d e f   c l o s e
    input       one-hot of 'd', 'e', 'f', ' ', 'c', 'l', 'o', 's'     (8, 96)
    target      'e', 'f', ' ', 'c', 'l', 'o', 's', 'e' as indices into VOCAB  (8,)

Metric: bits per character, ``bpc`` (the mean cross-entropy in bits), and ``acc``, the share of
characters predicted exactly. Baselines: the uniform guess over the 96 symbols scores log2 96 =
6.585 bpc (:func:`uniform_bpc`); the unigram model of the training block, the best predictor
that ignores the context, scores its entropy, 4.632 bpc on the training block
(:func:`unigram_bpc`; 4.530 on validation and 4.662 on test, whose mix of characters differs a
little). The unigram entropy is the chance level (the normalized score's zero). There is no
solved threshold: the text's true entropy is unknown and no model reaches zero, so language
modelling has no point at which it is solved; runs are compared on bpc alone and train their
whole budget.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sysconfig
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import DatasetTask, Objective, Samples

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


VOCAB = "\n" + "".join(map(chr, range(32, 127)))  # newline and the 95 printable ASCII
BLOCKS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}  # shares of the corpus
MAX_SEQ_LEN = 4096  # still 9 validation windows

# path under the standard library -> the first 16 hex digits of the file's SHA-256
CORPUS_FILES = {
    "_compression.py": "3ad5d60627477a60",
    "_markupbase.py": "cb14dd6f2e2439eb",
    "_py_abc.py": "f9c6fe3dd9b51bd7",
    "_sitebuiltins.py": "b9388bc1d6d12ed6",
    "_threading_local.py": "e1bf3dae66d0bfa6",
    "asyncio/protocols.py": "1d1b49988c338b4e",
    "asyncio/windows_utils.py": "e6fcffefa2521666",
    "curses/__init__.py": "d8730e360dd00ec0",
    "curses/has_key.py": "15a052812d9ae801",
    "difflib.py": "0c6afc23568d55b3",
    "email/_encoded_words.py": "4178321600c0a19c",
    "importlib/metadata/_functools.py": "3ec636fb8aeb297e",
    "json/__init__.py": "d5d41e2c29049515",
    "json/scanner.py": "8604d9d03786d0d5",
    "multiprocessing/dummy/__init__.py": "9127a40ea0ff342c",
    "multiprocessing/heap.py": "f6bb79bb99b9ae48",
    "multiprocessing/popen_forkserver.py": "0588ad0e5a36718b",
    "multiprocessing/popen_spawn_posix.py": "97b5d25aa4795168",
    "multiprocessing/reduction.py": "4999f8b9ae7b3e8a",
    "multiprocessing/sharedctypes.py": "77ef522912474652",
    "nturl2path.py": "980982ba66cc403d",
    "optparse.py": "07d224301cba312f",
    "pyclbr.py": "e8ca09333701ba41",
    "stringprep.py": "60b6c83581093029",
    "tracemalloc.py": "c2cc84a05b824df7",
    "unittest/_log.py": "905672317ab26c65",
    "unittest/signals.py": "f8286e818ca56e10",
    "unittest/suite.py": "ed2da92bc9f97c53",
    "unittest/util.py": "fdcc640c3505d16d",
    "urllib/response.py": "7e6c3b6d7a95f0d7",
    "urllib/robotparser.py": "389b811835f9a3ba",
    "wsgiref/headers.py": "0fbf95a47d8e4c0d",
    "xml/dom/__init__.py": "b415a6f3d3663c3a",
    "xml/dom/domreg.py": "826b02a803930834",
    "xml/dom/minicompat.py": "42974c4c67803dfe",
    "xml/dom/xmlbuilder.py": "d4f33a8f01875562",
    "xml/sax/handler.py": "64c7aae49f1dd382",
    "xml/sax/saxutils.py": "3fe2cdb6386e0c4d",
}


class CorpusUnavailable(ValueError):
    """This Python's standard library lacks a corpus file or has a different one."""


@functools.cache
def corpus() -> str:
    """The corpus text of this Python's standard library (read and checked once)."""
    return read_corpus(sysconfig.get_paths()["stdlib"])


def read_corpus(stdlib: str | Path) -> str:
    """The corpus text, checked file by file against :data:`CORPUS_FILES`."""
    root = Path(stdlib)
    parts = []
    for name, digest in CORPUS_FILES.items():
        path = root / name
        try:
            data = path.read_bytes()
        except OSError:
            raise CorpusUnavailable(
                f"char_lm: this Python's standard library has no {name} (looked in {root}); "
                "the corpus needs the 38 files listed in grubench.tasks.char_lm.CORPUS_FILES"
            ) from None
        found = hashlib.sha256(data).hexdigest()[:16]
        if found != digest:
            raise CorpusUnavailable(
                f"char_lm: {path} differs from the pinned corpus (SHA-256 {found}..., "
                f"expected {digest}...): this Python's text is not the one the task is defined "
                "on (CPython 3.10 to 3.13), so its bits per character would not be comparable"
            )
        parts.append(data.decode("ascii"))
    return "".join(parts)


def block(name: str) -> str:
    text = corpus()
    start, stop = BLOCKS[name]
    return text[int(len(text) * start) : int(len(text) * stop)]


def uniform_bpc() -> float:
    return math.log2(len(VOCAB))


@functools.cache
def unigram_bpc(split: str = "train") -> float:
    """Bits per character of the training block's character frequencies on ``split``."""
    counts = Counter(block("train"))
    total = sum(counts.values())
    text = block(split)
    return -sum(math.log2(counts[ch] / total) for ch in text) / len(text)


@functools.cache
def _codes(name: str) -> torch.Tensor:
    index = {ch: i for i, ch in enumerate(VOCAB)}
    return torch.tensor([index[ch] for ch in block(name)], dtype=torch.uint8)


class CharLMTask(DatasetTask):
    name = "char_lm"
    output_mode = "sequence"

    def __init__(self, seq_len: int = 128) -> None:
        super().__init__(seq_len)
        corpus()  # fail now, at validation, if this Python's text differs

    @classmethod
    def max_seq_len(cls) -> int:
        return MAX_SEQ_LEN

    @property
    def input_size(self) -> int:
        return len(VOCAB)

    @property
    def output_size(self) -> int:
        return len(VOCAB)

    @property
    def objective(self) -> Objective:
        return Objective(metric="bpc", mode="min", solved_threshold=None)

    def load_split(self, name: str) -> Samples:
        codes, T = _codes(name), self.seq_len
        n = (len(codes) - 1) // T
        starts = torch.arange(n) * T
        windows = codes[starts[:, None] + torch.arange(T + 1)]  # (n, T + 1)
        return Samples(windows[:, :-1], windows[:, 1:].long(), encode=self._one_hot)

    @staticmethod
    def _one_hot(codes: torch.Tensor) -> torch.Tensor:
        return F.one_hot(codes.long(), len(VOCAB)).float()  # (B, T, 96)

    def loss(self, prediction, target):
        return F.cross_entropy(prediction.flatten(0, 1), target.flatten())

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import CrossEntropy, TokenAccuracy

        return MetricCollection(
            {"bpc": CrossEntropy(bits=True), "acc": TokenAccuracy(self.output_size)}
        )

    def chance_level(self) -> float:
        return unigram_bpc("train")
