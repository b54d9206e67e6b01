"""Academic papers from their sources: LaTeX (`.tex`), JATS and PubMed XML (`.xml`) and PDF (`.pdf`).

Each converter takes a file's bytes and returns its documents as (position, text, meta); a file it cannot
read raises `ConversionError` with a quarantine kind. Math is kept as written in LaTeX (`$...$`, display
environments), since arXiv-style corpora train on it and a placeholder would lose it; JATS formulas keep
their `tex-math` and become `[formula]` when they only have MathML (whose text is a jumble of symbols).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from fm_pipeline.curation.conversion import ConversionError

Converted = list[tuple[int | None, str, dict[str, Any]]]

# ---- LaTeX -----------------------------------------------------------------------------------------------

_COMMENT_RE = re.compile(r"(?<!\\)%[^\n]*")
_MATH_ENVS = "equation|align|gather|multline|eqnarray|displaymath|math"
_MATH_RE = re.compile(
    r"\$\$.+?\$\$|(?<!\\)\$.+?(?<!\\)\$|\\\[.+?\\\]|\\\(.+?\\\)"
    rf"|\\begin\{{({_MATH_ENVS})\*?\}}.+?\\end\{{\1\*?\}}", re.DOTALL)
_DROP_ENV_RE = re.compile(r"\\begin\{(figure|table|thebibliography|tikzpicture)\*?\}.*?\\end\{\1\*?\}", re.DOTALL)
_CAPTION_RE = re.compile(r"\\caption\{([^{}]*)\}")
_SECTION_RE = re.compile(r"\\(?:sub)*section\*?\{([^{}]*)\}|\\begin\{abstract\}")
_DROP_ARG_RE = re.compile(
    r"\\(?:label|cite[tp]?|bibliographystyle|bibliography|vspace|hspace)\*?(?:\[[^\]]*\])?\{[^{}]*\}")
_REF_RE = re.compile(r"\\(?:eq|auto|c|C)?ref\{[^{}]*\}")
_ENV_RE = re.compile(r"\\(?:begin|end)\{[^{}]*\}(?:\[[^\]]*\])?")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+(?=[.,;:])")
_KEEP_ARG_RE = re.compile(r"\\[a-zA-Z]+\*?(?:\[[^\]]*\])?\{([^{}]*)\}")
_BARE_CMD_RE = re.compile(r"\\[a-zA-Z]+\*?(?:\[[^\]]*\])?")
_ESCAPES = {r"\%": "%", r"\&": "&", r"\_": "_", r"\#": "#", r"\$": "$", "~": " ", "``": "\u201c", "''": "\u201d"}
_TITLE_RE = re.compile(r"\\title\{([^{}]*)\}")


def tex_to_text(source: str) -> str:
    """LaTeX as text. The preamble (before `\\begin{document}`) is dropped but its `\\title`, which becomes the
    first line; comments are removed; section titles become lines of their own (and `abstract` the line
    `Abstract`); figures, tables and the bibliography are dropped but figure and table captions kept; citations
    and labels removed, references shown as `[ref]`; `\\item` becomes `- `, other environments' `\\begin` and
    `\\end` paragraph breaks; formatting commands keep their
    text and other commands go. Math is left exactly as written. Lines of a paragraph are joined, paragraphs
    separated by a blank line."""
    source = _COMMENT_RE.sub("", source.replace("\r\n", "\n"))
    begin, end = source.find("\\begin{document}"), source.find("\\end{document}")
    title = _TITLE_RE.search(source[:begin]) if begin >= 0 else None
    body = source[begin + len("\\begin{document}"):end if end > begin else None] if begin >= 0 else source
    maths: list[str] = []

    def keep_math(match: re.Match[str]) -> str:
        maths.append(match.group(0))
        return f"\x00{len(maths) - 1}\x00"

    body = _MATH_RE.sub(keep_math, body)
    body = _DROP_ENV_RE.sub(lambda m: "\n\n" + "\n\n".join(_CAPTION_RE.findall(m.group(0))) + "\n\n", body)
    body = _SECTION_RE.sub(lambda m: f"\n\n{m.group(1) or 'Abstract'}\n\n", body)
    body = _DROP_ARG_RE.sub("", body)
    body = _REF_RE.sub("[ref]", body)
    body = body.replace("\\item", "\n\n- ").replace("\\\\", "\n")
    body = _ENV_RE.sub("\n\n", body)
    while True:
        reduced = _KEEP_ARG_RE.sub(r"\1", body)
        if reduced == body:
            break
        body = reduced
    body = _BARE_CMD_RE.sub("", body).replace("{", "").replace("}", "")
    for escaped, plain in _ESCAPES.items():
        body = body.replace(escaped, plain)
    body = _SPACE_BEFORE_PUNCT_RE.sub("", body)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    if title:
        paragraphs.insert(0, " ".join(title.group(1).split()))
    text = "\n\n".join(p for p in paragraphs if p)
    return re.sub(r"\x00(\d+)\x00", lambda m: maths[int(m.group(1))], text)  # math restored untouched


def convert_tex(raw: bytes) -> Converted:
    return [(None, tex_to_text(decode_utf8(raw)), {"format": "latex"})]


# ---- JATS / PubMed XML -----------------------------------------------------------------------------------


def parse_xml_safely(raw: bytes) -> ET.Element:
    """Parse XML, refusing entity declarations and external entities (billion laughs, XXE), as `defusedxml`
    does: a first pass with expat only looks for them, then ElementTree parses. A DOCTYPE naming an external
    DTD (every JATS file has one) is allowed; the DTD is never fetched."""

    def refuse(*_args: Any) -> None:
        raise ConversionError("xml_entities_refused", "the XML declares entities; refused for safety")

    checker = expat.ParserCreate()
    checker.EntityDeclHandler = refuse
    checker.UnparsedEntityDeclHandler = refuse
    checker.ExternalEntityRefHandler = refuse
    try:
        checker.Parse(raw, True)
        return ET.fromstring(raw)
    except (expat.ExpatError, ET.ParseError) as exc:
        raise ConversionError("malformed_xml", str(exc)) from exc


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _inline_text(element: ET.Element) -> str:
    """An element's text with formulas as `tex-math` (or `[formula]`), whitespace collapsed."""
    parts: list[str] = []

    def walk(node: ET.Element) -> None:
        name = _local(node.tag)
        if name in ("inline-formula", "disp-formula"):
            tex = next((n for n in node.iter() if _local(n.tag) == "tex-math"), None)
            parts.append("".join(tex.itertext()).strip() if tex is not None else "[formula]")
        elif name not in ("fig", "table-wrap", "label"):
            parts.append(node.text or "")
            for child in node:
                walk(child)
                parts.append(child.tail or "")
            return
        parts.append("")

    walk(element)
    return " ".join("".join(parts).split())


def _section_lines(section: ET.Element, lines: list[str]) -> None:
    """A JATS `sec` (or `abstract`/`body`): its title, paragraphs and nested sections, in order."""
    for child in section:
        name = _local(child.tag)
        if name in ("title", "p", "disp-formula", "list-item", "disp-quote"):
            lines.append(_inline_text(child))
        elif name in ("sec", "list"):
            _section_lines(child, lines)


def _find(root: ET.Element, *path: str) -> ET.Element | None:
    node: ET.Element | None = root
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None) if node is not None else None
    return node


def jats_to_text(root: ET.Element) -> tuple[str, dict[str, Any]]:
    """A JATS `article`: the title line, `Abstract` and its paragraphs, then the body's sections (titles as
    lines of their own), paragraphs separated by blank lines; references and back matter dropped."""
    meta_node = _find(root, "front", "article-meta")
    lines: list[str] = []
    meta: dict[str, Any] = {"format": "jats"}
    if meta_node is not None:
        title = _find(meta_node, "title-group", "article-title")
        if title is not None:
            lines.append(_inline_text(title))
        for node in meta_node:
            if _local(node.tag) == "article-id" and node.get("pub-id-type") in ("doi", "pmid", "pmc"):
                meta[node.get("pub-id-type")] = (node.text or "").strip()
        abstract = _find(meta_node, "abstract")
        if abstract is not None:
            lines.append("Abstract")
            _section_lines(abstract, lines)
    body = _find(root, "body")
    if body is not None:
        _section_lines(body, lines)
    lang = root.get("{http://www.w3.org/XML/1998/namespace}lang")
    if lang:
        meta["declared_lang"] = lang
    return "\n\n".join(line for line in lines if line), meta


def pubmed_to_documents(root: ET.Element) -> Converted:
    """A PubMed `PubmedArticleSet`: one document per article, its `ArticleTitle` line then `Abstract` and each
    `AbstractText` paragraph (prefixed `Label: ` when labelled, as PubMed shows structured abstracts)."""
    documents: Converted = []
    for index, article in enumerate(a for a in root.iter() if _local(a.tag) == "PubmedArticle"):
        citation = _find(article, "MedlineCitation")
        pmid = _find(citation, "PMID") if citation is not None else None
        body = _find(citation, "Article") if citation is not None else None
        if body is None:
            raise ConversionError("pubmed_no_article", f"PubmedArticle {index} has no MedlineCitation/Article")
        lines = [_inline_text(t) for t in body if _local(t.tag) == "ArticleTitle"]
        abstract = _find(body, "Abstract")
        if abstract is not None:
            lines.append("Abstract")
            for part in abstract:
                if _local(part.tag) == "AbstractText":
                    label = part.get("Label")
                    lines.append(f"{label}: {_inline_text(part)}" if label else _inline_text(part))
        meta: dict[str, Any] = {"format": "pubmed"}
        if pmid is not None and pmid.text:
            meta["pmid"] = pmid.text.strip()
        documents.append((index, "\n\n".join(line for line in lines if line), meta))
    return documents


def convert_xml(raw: bytes) -> Converted:
    """JATS (`article`) or PubMed (`PubmedArticleSet`) XML; any other root is a ConversionError."""
    root = parse_xml_safely(raw)
    kind = _local(root.tag)
    if kind == "article":
        text, meta = jats_to_text(root)
        return [(None, text, meta)]
    if kind == "PubmedArticleSet":
        return pubmed_to_documents(root)
    raise ConversionError("unsupported_xml", f"root element <{kind}> is neither JATS <article> nor "
                                             "<PubmedArticleSet>")


# ---- PDF -------------------------------------------------------------------------------------------------


def convert_pdf(raw: bytes) -> Converted:
    """The text layer of a PDF, page by page (pages separated by a blank line), read with `pypdf` (the
    optional `pdf` extra). No OCR: a scanned PDF without a text layer is quarantined, as is any PDF when
    pypdf is not installed."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:
        raise ConversionError("pdf_reader_missing",
                              "reading PDF needs pypdf: pip install 'fm-pipeline[pdf]'") from exc
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ConversionError("pdf_encrypted", "the PDF is encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except ConversionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ConversionError("corrupt_pdf", f"{type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(unwrap_lines(p) for p in pages if p)
    if not text.strip():
        raise ConversionError("pdf_no_text_layer", f"none of the {len(pages)} pages has extractable text "
                                                   "(a scan needs OCR, which this pipeline does not do)")
    return [(None, text, {"format": "pdf", "pages": len(pages)})]


_SENTENCE_END = (".", "!", "?", ":", ";")


def unwrap_lines(text: str) -> str:
    """A PDF page's text with the layout's line wraps undone: a line that does not end a sentence is joined
    to the next when that one starts in lower case (after a hyphen with no space, keeping the hyphen:
    `mid-` + `sized`). Headings and lines before a capital stay apart; so a wrap before a proper noun stays."""
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        prev = out[-1].rstrip()
        if prev and line[:1].islower() and not prev.endswith(_SENTENCE_END):
            out[-1] = prev + ("" if prev.endswith("-") else " ") + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


def decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConversionError("invalid_utf8", str(exc)) from exc
