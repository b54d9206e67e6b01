"""The plots: real PNG files of the expected size, the same bytes for the same numbers, and Markdown that
carries the image inline."""

import base64
import re
import struct
from pathlib import Path

from fm_pipeline.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def test_language_mix_is_a_deterministic_png(tmp_path: Path):
    before, after = {"en": 600, "es": 100, "zh": 50}, {"en": 400, "es": 200, "zh": 150}
    first = plots.language_mix(before, after, tmp_path / "a" / "mix.png", target={"en": 0.5, "es": 0.3, "zh": 0.2})
    again = plots.language_mix(before, after, tmp_path / "b.png", target={"en": 0.5, "es": 0.3, "zh": 0.2})
    other = plots.language_mix(before, {"en": 100, "es": 100, "zh": 100}, tmp_path / "c.png")
    assert first == tmp_path / "a" / "mix.png"
    assert first.read_bytes() == again.read_bytes()
    assert other.read_bytes() != first.read_bytes()
    assert _size(first) == (400, 256), "5 x 3.2 inches at 80 dpi"


def test_loss_curve_and_size_vs_perplexity(tmp_path: Path):
    curve = plots.loss_curve([(10, 5.0), (20, 4.2), (30, 3.9)], tmp_path / "loss.png", val=[(30, 4.1)])
    width, height = _size(curve)
    assert (width, height) == (440, 256)
    points = [{"label": "fp32", "size_mb": 40.0, "ppl": 20.0}, {"label": "int8", "size_mb": 11.0, "ppl": 20.4},
              {"label": "pruned 50%", "size_mb": 20.0, "ppl": 900.0}]
    scatter = plots.size_vs_perplexity(points, tmp_path / "size.png")
    assert _size(scatter) == (440, 280)
    assert scatter.stat().st_size > 5_000


def test_markdown_embeds_the_png(tmp_path: Path):
    png = plots.loss_curve([(1, 2.0), (2, 1.5)], tmp_path / "loss.png")
    markdown = plots.markdown_image(png, "loss by step")
    match = re.match(r"!\[loss by step\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)\n\n`(.+)`$", markdown)
    assert match and base64.b64decode(match.group(1)) == png.read_bytes()
    assert match.group(2) == str(png)
