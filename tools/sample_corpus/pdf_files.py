"""Tiny PDFs for `academic_papers/pdf/`, written byte by byte (no PDF library), so rebuilding them gives the
same bytes: one page of text per paragraph in Helvetica (a standard font, nothing embedded), and one page with
a drawing but no text layer, as a scanned paper has."""

from __future__ import annotations

import textwrap
from pathlib import Path

PDF_DIR = "pdf"


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(paragraphs: list[str]) -> bytes:
    """A page's content stream: each paragraph wrapped at 88 characters, 14 pt leading, a blank line between."""
    ops = ["BT", "/F1 10 Tf", "14 TL", "56 790 Td"]
    for paragraph in paragraphs:
        ops += [f"({_escape(line)}) Tj T*" for line in textwrap.wrap(paragraph, 88)] + ["T*"]
    return ("\n".join([*ops, "ET"]) + "\n").encode("latin-1")


def minimal_pdf(pages: list[bytes]) -> bytes:
    """A PDF 1.4 file with one page per content stream, A4, with a cross-reference table of exact offsets."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + b" ".join(f"{4 + 2 * i} 0 R".encode() for i in range(len(pages)))
               + f"] /Count {len(pages)} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    for i, stream in enumerate(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> "
                       f">> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdfs(papers_dir: Path, seed_dir: Path) -> list[str]:
    """`<name>.pdf` for every `<name>.txt` in `seed_dir` (pages split at lines `---`, paragraphs at blank
    lines), plus `scanned_no_text_layer.pdf`, whose only page draws a grey box. Returns the names written."""
    out = papers_dir / PDF_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in sorted(seed_dir.glob("*.txt")):
        pages = [_content([p.strip() for p in page.split("\n\n") if p.strip()])
                 for page in seed.read_text(encoding="utf-8").split("\n---\n")]
        (out / f"{seed.stem}.pdf").write_bytes(minimal_pdf(pages))
        written.append(f"{seed.stem}.pdf")
    (out / "scanned_no_text_layer.pdf").write_bytes(minimal_pdf([b"0.6 g\n56 500 480 290 re f\n"]))
    return [*written, "scanned_no_text_layer.pdf"]
