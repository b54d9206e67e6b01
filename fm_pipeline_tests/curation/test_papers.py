"""Papers from LaTeX, JATS/PubMed XML and PDF: exact text, refusals by kind, the sample PDFs' bytes."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from fm_pipeline.curation.conversion import ConversionError
from fm_pipeline.curation.ingest import ingest_source
from fm_pipeline.curation.papers import convert_pdf, convert_xml, tex_to_text, unwrap_lines
from fm_pipeline.curation.readers import ReadContext, read_file
from fm_pipeline.lake.paths import raw_corpus_root
from tools.sample_corpus import SEEDS
from tools.sample_corpus.pdf_files import minimal_pdf, write_pdfs

PAPERS = raw_corpus_root() / "academic_papers"

TEX = r"""\documentclass{article}
\usepackage{amsmath} % a comment
\title{Tides  and
Gaps}
\begin{document}
\maketitle
\begin{abstract}
We fill gaps. % drop me
\end{abstract}
\section{Intro}
Gauges are \emph{old} \cite{x}, see Section~\ref{s:m} and costs of 5\% or \$3.
\subsection*{Math}
Let $a_{i}$ be
\begin{align}
x &= \frac{1}{2}
\end{align}
\begin{figure}\includegraphics{f.pdf}\caption{A map.}\label{f}\end{figure}
\begin{itemize}\item one\item two\end{itemize}
\end{document}
ignored after the end"""


def test_latex_keeps_titles_text_and_math_as_written():
    assert tex_to_text(TEX) == (
        "Tides and Gaps\n\nAbstract\n\nWe fill gaps.\n\nIntro\n\nGauges are old, see Section [ref] and costs of 5% "
        "or $3.\n\nMath\n\nLet $a_{i}$ be \\begin{align}\nx &= \\frac{1}{2}\n\\end{align}\n\nA map.\n\n- one\n\n"
        "- two")


JATS = b"""<?xml version="1.0"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS//EN" "JATS-archivearticle1.dtd">
<article xml:lang="es"><front><article-meta><article-id pub-id-type="pmid">42</article-id>
<title-group><article-title>Un  <italic>t\xc3\xadtulo</italic></article-title></title-group>
<abstract><sec><title>Objetivo</title><p>Medir <inline-formula><tex-math>x^2</tex-math></inline-formula> bien.</p></sec>
</abstract></article-meta></front>
<body><sec><title>M\xc3\xa9todos</title><p>Texto <xref rid="b1">[1]</xref> aqu\xc3\xad.</p>
<disp-formula><mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mi>y</mml:mi></mml:math></disp-formula>
<fig><label>Fig 1</label><caption><p>skip</p></caption></fig></sec></body>
<back><ref-list><ref id="b1">Ref.</ref></ref-list></back></article>"""


def test_jats_title_abstract_and_sections():
    ((position, text, meta),) = convert_xml(JATS)
    assert position is None
    assert text == ("Un t\u00edtulo\n\nAbstract\n\nObjetivo\n\nMedir x^2 bien.\n\nM\u00e9todos\n\n"
                    "Texto [1] aqu\u00ed.\n\n[formula]")
    assert meta == {"format": "jats", "pmid": "42", "declared_lang": "es"}


def test_pubmed_set_gives_one_document_per_article():
    xml = (b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>7</PMID><Article><ArticleTitle>T.</ArticleTitle>"
           b"<Abstract><AbstractText Label=\"AIM\">A.</AbstractText><AbstractText>B.</AbstractText></Abstract>"
           b"</Article></MedlineCitation></PubmedArticle><PubmedArticle><MedlineCitation><Article>"
           b"<ArticleTitle>U.</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>")
    assert convert_xml(xml) == [(0, "T.\n\nAbstract\n\nAIM: A.\n\nB.", {"format": "pubmed", "pmid": "7"}),
                                (1, "U.", {"format": "pubmed"})]


@pytest.mark.parametrize(("raw", "kind"), [
    (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "xml_entities_refused"),
    (b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>', "xml_entities_refused"),
    (b"<article><front>", "malformed_xml"),
    (b"<html><body/></html>", "unsupported_xml"),
])
def test_unsafe_or_unknown_xml_is_refused(raw, kind):
    with pytest.raises(ConversionError) as caught:
        convert_xml(raw)
    assert caught.value.kind == kind


def test_pdf_without_pypdf_is_quarantined_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real_import = builtins.__import__

    def no_pypdf(name, *args, **kwargs):
        if name.startswith("pypdf"):
            raise ImportError("no pypdf here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pypdf)
    path = PAPERS / "pdf" / "field_notes_on_urban_swifts.pdf"
    (record,) = read_file(path, ReadContext("academic_papers", "pdf/field_notes_on_urban_swifts.pdf"))
    assert (record.kind, record.error) == ("pdf_reader_missing",
                                           "reading PDF needs pypdf: pip install 'fm-pipeline[pdf]'")


def test_pdf_text_layer_is_read_and_a_scan_refused():
    pytest.importorskip("pypdf")
    ((_, text, meta),) = convert_pdf(minimal_pdf([b"BT /F1 10 Tf 14 TL 56 790 Td (Hello there, reader) Tj T* "
                                                  b"(of papers.) Tj T* ET\n"]))
    assert (text, meta) == ("Hello there, reader of papers.", {"format": "pdf", "pages": 1})
    with pytest.raises(ConversionError) as caught:
        convert_pdf((PAPERS / "pdf" / "scanned_no_text_layer.pdf").read_bytes())
    assert caught.value.kind == "pdf_no_text_layer"
    with pytest.raises(ConversionError) as caught:
        convert_pdf(b"%PDF-1.4\nnot really")
    assert caught.value.kind == "corrupt_pdf"


def test_unwrap_joins_layout_wraps_only():
    assert unwrap_lines("1. Introduction\nThe swift is a mid-\nsized bird that\nnests in Europe.\nA new one") == (
        "1. Introduction\nThe swift is a mid-sized bird that nests in Europe.\nA new one")


def test_sample_pdfs_are_rebuilt_byte_identically(tmp_path: Path):
    names = write_pdfs(tmp_path, SEEDS / "academic_papers" / "pdf")
    assert names == ["field_notes_on_urban_swifts.pdf", "scanned_no_text_layer.pdf"]
    for name in names:
        assert (tmp_path / "pdf" / name).read_bytes() == (PAPERS / "pdf" / name).read_bytes(), name


def test_sample_papers_ingest_with_the_planted_refusals(tmp_path: Path):
    stats = ingest_source("academic_papers", PAPERS, tmp_path / "out")
    expected = {"xml_entities_refused": 1}
    try:
        import pypdf  # noqa: F401
        expected["pdf_no_text_layer"] = 1
    except ImportError:
        expected["pdf_reader_missing"] = 2
    assert stats.quarantined_by_kind == dict(sorted(expected.items()))
    assert stats.files_by_format == {"json": 1, "jsonl": 2, "latex": 1, "pdf": 2, "xml": 3}
