"""A labelled near-duplicate set built from real documents, and the figures a dedup result earns on it.

Copies are planted with seeded, realistic edits of graded strength (scattered word edits, added web
boilerplate, formatting, reordered or removed paragraphs, truncation), in every script the originals come
in: space-less ones (zh, ja, th) are edited character by character, as their shingles are characters.
Hard negatives are documents that must stay apart: distinct pages sharing one heavy site template,
distinct texts sharing a long quotation, plus whatever translations and same-language documents the
originals hold. Every document belongs to a family (its original); a merge across families is a false merge.

Used by `python -m benchmarks.dedup` (on the public corpora) and by the dedup tests (on the sample corpus).
"""

from __future__ import annotations

import itertools
import random
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.clusters import DedupResult, find_duplicates
from fm_pipeline.curation.dedup.minhash import MinHashConfig, shingles
from fm_pipeline.curation.dedup.plan import DEFAULT_SOURCE_PRIORITY, DEFAULT_VERIFY_THRESHOLD
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.html_text import get_html_extractor
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.curation.readers import ReadContext, format_of, read_file
from fm_pipeline.curation.words import SPACELESS_LANGS, is_spaceless
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from tools.sample_corpus import SEEDS
from tools.sample_corpus.documents import build_documents, load_pages

# Edit kinds, in report order. "words_a_b": a% to b% of the tokens substituted, inserted or deleted.
WORD_EDITS = {"words_01_05": (0.01, 0.05), "words_05_10": (0.05, 0.10), "words_10_20": (0.10, 0.20)}
COPY_KINDS = (*WORD_EDITS, "boilerplate", "formatting", "paragraph_reordered", "paragraph_removed", "truncated_80")
# The project's definition (README, "Near duplicates"): these kinds are near duplicates and must be found.
MUST_FIND = ("words_01_05", "boilerplate", "formatting", "paragraph_reordered", "paragraph_removed", "truncated_80")

# Web page chrome, one line each, as scrapers leave it around an article.
HEADER_LINES = (
    "Home | News | Sport | Culture | Opinion | Contact",
    "Skip to main content",
    "Menu Search Subscribe Sign in",
    "Published 14 March 2024, updated 15 March 2024 at 09:12",
    "By the editorial team · 6 min read",
)
FOOTER_LINES = (
    "Share this article: Facebook Twitter LinkedIn Email",
    "We use cookies to improve your experience on our site. By continuing to browse you agree to our use of "
    "cookies. Accept all | Manage settings",
    "© 2024 Example Media Group. All rights reserved. Privacy Policy | Terms of Use | Contact us",
    "Tags: travel, culture, local news",
    "Sign up for our weekly newsletter and never miss a story. Enter your email address Subscribe",
)
# One site's whole template (nav, cookie banner, newsletter box, related links, footer): distinct pages of the
# site share it, and sharing it must not make them duplicates.
SITE_TEMPLATE_TOP = (
    "Skip to content\nThe Riverside Chronicle | Home | Local | Business | Travel | Food | Opinion | Events | "
    "Subscribe | Sign in\nWe value your privacy. We and our partners use cookies and similar technologies to "
    "store and access information on your device, to personalise content and ads, and to measure audiences. "
    "You can accept all, reject non-essential cookies or manage your preferences at any time. Accept all | "
    "Reject | Manage preferences"
)
SITE_TEMPLATE_BOTTOM = (
    "Share this story: Facebook | X | WhatsApp | Email | Copy link\nMore from the Riverside Chronicle: "
    "Ten walks along the old towpath; Where to eat near the market hall; The week ahead in local events; "
    "Letters to the editor\nGet the Chronicle in your inbox: our free newsletter arrives every Friday "
    "morning with the week's best stories. Sign up now\nAbout us | Advertise | Careers | Contact | Privacy "
    "policy | Cookie settings | Terms and conditions\n© 2024 Riverside Chronicle Media Ltd. All rights reserved."
)
_SEP_RE = re.compile(r"(\s+)")


@dataclass(frozen=True)
class Label:
    """What a document is in the set: its family (the original it derives from), role and edit kind."""

    family: str
    role: str  # "copy", "original", "template" or "quotation"
    kind: str  # an edit kind for copies; "original", "template" or "quotation" otherwise
    lang: str
    of: str | None = None  # the document a copy was made from
    jaccard: float | None = None  # true shingle Jaccard with `of`


@dataclass
class EvalSet:
    docs: list[Document]
    labels: dict[str, Label]
    # (a, b, kind) pairs of distinct families that must not be merged, by hard-negative kind.
    negatives: list[tuple[str, str, str]] = field(default_factory=list)


# --- originals ------------------------------------------------------------------------------------------

_LANG_FROM_ID = re.compile(r"^(?:ref-|paper-)([a-z]{2})-")
_SAMPLE_COPY_SUFFIX = re.compile(r"-(?:repost|syndicated|mirror)$")


def _sample_lang(doc: Document, rel: Path) -> str | None:
    """The gold language of a book, reference article or paper, from its meta, path or id."""
    switched = doc.meta.get("code_switched")
    if switched:
        return switched[0]
    if rel.parts[0] == "books":
        return rel.parts[1] if rel.parts[1] != "mixed" else rel.name[:2]
    if "articles" in rel.parts:
        return rel.name[:2]
    m = _LANG_FROM_ID.match(doc.id)
    return m.group(1) if m else None


def sample_corpus_documents(raw: Path) -> list[Document]:
    """The sample corpus's prose documents (books, reference articles, papers, web pages), read by the
    pipeline's own readers and normalized as the filter stage does, with their gold language. Web pages
    (WARC and WET records have no id) are named by their seed id, found by URL. Code, junk pages and the
    malformed files under `broken/` are left out."""
    seeds = {d.url: d for d in build_documents(load_pages(SEEDS / "common_crawl" / "pages"))}
    extractor = get_html_extractor()
    docs = []
    for path in sorted(raw.rglob("*")):
        rel = path.relative_to(raw)
        if not path.is_file() or len(rel.parts) < 2 or "broken" in rel.parts or format_of(path) is None:
            continue
        if rel.parts[0] == "code_repositories":
            continue
        ctx = ReadContext(rel.parts[0], str(rel), html_to_text=extractor)
        for rec in read_file(path, ctx):
            if not isinstance(rec, Document):
                continue
            if rel.parts[0] == "common_crawl":
                seed = seeds[rec.url]
                if seed.category == "junk":
                    continue
                rec.id, lang = seed.id, seed.lang.split("+")[0]
            else:
                lang = _sample_lang(rec, rel)
            if lang is not None:
                rec.lang, rec.text = lang, normalize_text(rec.text)
                docs.append(rec)
    return docs


def sample_family(doc_id: str) -> str:
    """The sample corpus plants its own copies as `<id>-repost`, `-syndicated` or `-mirror` of `<id>`."""
    return _SAMPLE_COPY_SUFFIX.sub("", doc_id)


# --- edits ----------------------------------------------------------------------------------------------


def edit_tokens(text: str, rate: float, spaceless: bool, rng: random.Random) -> str:
    """Substitute, insert or delete `rate` of the tokens (words; characters in space-less scripts), each
    edit one of the three at random, new tokens drawn from the document's own vocabulary."""
    if spaceless:
        pieces = list(text)
        positions = [i for i, ch in enumerate(pieces) if not ch.isspace()]
    else:
        pieces = _SEP_RE.split(text)
        positions = [i for i, p in enumerate(pieces) if p and not p.isspace()]
    vocabulary = sorted({pieces[i] for i in positions})
    for i in rng.sample(positions, max(1, round(rate * len(positions)))):
        op = rng.choice(("substitute", "insert", "delete"))
        new = rng.choice(vocabulary)
        glue = "" if spaceless else " "
        if op == "substitute":
            pieces[i] = new
        elif op == "insert":
            pieces[i] = pieces[i] + glue + new
        else:
            pieces[i] = ""
    out = "".join(pieces)
    return out if spaceless else re.sub(r"[ \t]{2,}", " ", out)


def add_boilerplate(text: str, rng: random.Random) -> str:
    """One to three chrome lines (navigation, date line, share bar, cookie banner, copyright) around the text."""
    n = rng.randint(1, 3)
    top = rng.sample(HEADER_LINES, rng.randint(0, n))
    bottom = rng.sample(FOOTER_LINES, n - len(top))
    return "\n".join([*top, text, *bottom])


def reformat(text: str, rng: random.Random) -> str:
    """Two or three formatting changes that leave the words alone: line wrapping, spacing, quotes and
    dashes, case of the first line, half the punctuation that ends a word or sentence (not the dots inside
    "3.10" or an address), Unicode decomposed form (NFD)."""
    ops = rng.sample(("rewrap", "spacing", "quotes", "case", "punct", "nfd"), rng.randint(2, 3))
    for op in ops:
        if op == "rewrap":
            text = "\n".join(" ".join(p.split()) for p in text.split("\n\n"))
        elif op == "spacing":
            text = text.replace(" ", "  ").replace("\n", " \n\n")
        elif op == "quotes":
            text = text.translate(str.maketrans({"'": "’", '"': "“", "—": " - ", "-": "–"}))
        elif op == "case":
            first, _, rest = text.partition("\n")
            text = first.upper() + ("\n" + rest if rest else "")
        elif op == "punct":
            text = re.sub(r"[.,;:!?。、，．](?=\s|$)", lambda m: "" if rng.random() < 0.5 else m.group(0), text)
        else:
            text = unicodedata.normalize("NFD", text)
    return text


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def reorder_paragraph(text: str, rng: random.Random) -> str:
    """One paragraph moved elsewhere in the document."""
    paras = paragraphs(text)
    i = rng.randrange(len(paras))
    moved = paras.pop(i)
    paras.insert(rng.choice([j for j in range(len(paras) + 1) if j != i]), moved)
    return "\n\n".join(paras)


def removable_paragraphs(text: str) -> list[int]:
    """Paragraphs that are at most 30% of the text: an aside, caption or ad a copy may leave out."""
    paras = paragraphs(text)
    total = sum(map(len, paras))
    return [i for i, p in enumerate(paras) if len(p) <= 0.3 * total] if len(paras) >= 3 else []


def remove_paragraph(text: str, rng: random.Random) -> str:
    """One removable paragraph left out."""
    paras = paragraphs(text)
    del paras[rng.choice(removable_paragraphs(text))]
    return "\n\n".join(paras)


def truncate(text: str, share: float = 0.8) -> str:
    """The first `share` of the text, cut at a space when there is one near the cut (a page cut off)."""
    cut = round(len(text) * share)
    space = text.rfind(" ", 0, cut)
    return text[: space if space > cut - 40 else cut]


def make_copy(doc: Document, kind: str, rng: random.Random) -> str:
    text = doc.text
    if kind in WORD_EDITS:
        lo, hi = WORD_EDITS[kind]
        return edit_tokens(text, rng.uniform(lo, hi), is_spaceless(doc.text, doc.lang), rng)
    if kind == "boilerplate":
        return add_boilerplate(text, rng)
    if kind == "formatting":
        return reformat(text, rng)
    if kind == "paragraph_reordered":
        return reorder_paragraph(text, rng)
    if kind == "paragraph_removed":
        return remove_paragraph(text, rng)
    if kind == "truncated_80":
        return truncate(text)
    raise ValueError(f"unknown edit kind {kind!r}")


def true_jaccard(a: Document, b: Document) -> float:
    """Jaccard similarity of the two documents' shingle sets (what MinHash estimates)."""
    sa, sb = shingles(a.text, a.lang), shingles(b.text, b.lang)
    return len(sa & sb) / len(sa | sb)


# --- the set --------------------------------------------------------------------------------------------


def build_eval_set(
    originals: Sequence[Document],
    family_of: dict[str, str] | None = None,
    copies_per_original: int = 3,
    holdout_every: int = 4,
    template_pages: int = 8,
    seed: int = 0,
) -> EvalSet:
    """Originals (kept as they are), planted copies (source `common_crawl`, so a curated original outranks
    them) and hard negatives built from held-out documents, which are not in the set themselves.

    `family_of` maps a document already in `originals` to the original it copies (a corpus's own planted
    duplicates). Each original gets `copies_per_original` copies of different kinds, kinds rotating so every
    kind meets every script; paragraph kinds only go to documents they fit (see `removable_paragraphs`). Every
    `holdout_every`-th singleton is held out: the first `template_pages` of them become pages of one site
    (the same heavy template around each), the rest become pairs of texts that quote the same passage.
    """
    rng = random.Random(seed)
    family_of = family_of or {}
    is_family_head = {family_of.get(d.id, d.id) for d in originals if d.id in family_of}
    singles = [d for d in originals if d.id not in family_of and d.id not in is_family_head]
    held = {d.id for d in singles[holdout_every - 1 :: holdout_every]}
    kept = [d for d in originals if d.id not in held]
    held_docs = [d for d in originals if d.id in held]
    labels = {
        d.id: Label(family=family_of.get(d.id, d.id), role="original", kind="original", lang=d.lang) for d in kept
    }
    docs = list(kept)
    kinds = itertools.cycle(COPY_KINDS)
    for doc in kept:
        if doc.id in family_of or doc.id in is_family_head:
            continue  # a corpus's own duplicates keep the survivors they have there
        fits = {
            "paragraph_reordered": len(paragraphs(doc.text)) >= 3,
            "paragraph_removed": bool(removable_paragraphs(doc.text)),
        }
        planted = 0
        while planted < copies_per_original:
            kind = next(kinds)
            if not fits.get(kind, True):
                continue
            copy = Document(
                id=f"{kind}~{doc.id}", text=normalize_text(make_copy(doc, kind, rng)), source="common_crawl",
                lang=doc.lang,
            )
            labels[copy.id] = Label(
                family=labels[doc.id].family, role="copy", kind=kind, lang=doc.lang, of=doc.id,
                jaccard=true_jaccard(copy, doc),
            )
            docs.append(copy)
            planted += 1
    negatives = _template_pages(held_docs[:template_pages], docs, labels)
    negatives += _quotations(held_docs[template_pages:], docs, labels)
    return EvalSet(docs=docs, labels=labels, negatives=negatives)


def _template_pages(held: list[Document], docs: list[Document], labels: dict[str, Label]) -> list[tuple]:
    """Short, distinct articles inside one site's heavy template: each held-out text's leading paragraphs,
    as few as make it at least as long as the template in shingles. Every pair must stay apart. (Pages
    with less text of their own than template are mostly the same text; extraction, not dedup, must
    remove such chrome.)"""
    pages = []
    for doc in held:
        chrome = len(shingles(f"{SITE_TEMPLATE_TOP}\n{SITE_TEMPLATE_BOTTOM}", doc.lang))
        paras = paragraphs(doc.text)
        lead = next(
            (p for k in range(1, len(paras)) if len(shingles(p := "\n\n".join(paras[:k]), doc.lang)) >= chrome),
            doc.text,
        )
        if len(shingles(lead, doc.lang)) < chrome:
            continue
        page = Document(
            id=f"template~{doc.id}", text=normalize_text(f"{SITE_TEMPLATE_TOP}\n{lead}\n{SITE_TEMPLATE_BOTTOM}"),
            source="common_crawl", lang=doc.lang,
        )
        labels[page.id] = Label(family=page.id, role="template", kind="template", lang=doc.lang)
        docs.append(page)
        pages.append(page)
    return [(a.id, b.id, "shared_template") for a, b in itertools.combinations(pages, 2)]


def _quotations(held: list[Document], docs: list[Document], labels: dict[str, Label]) -> list[tuple]:
    """Triples of held-out texts: the third one's longest paragraph is quoted at length by the other two,
    each of which keeps its own text around the quotation (quotation ~30-45% of each)."""
    negatives = []
    for a, b, source in zip(held[0::3], held[1::3], held[2::3], strict=False):
        quote = max(paragraphs(source.text), key=len)
        pair = []
        for doc in (a, b):
            own = doc.text[: max(len(quote), round(len(doc.text) * 0.7))]
            text = normalize_text(f"{own}\n\nAs the passage puts it:\n\n{quote}")
            quoted = Document(id=f"quotation~{doc.id}", text=text, source="common_crawl", lang=doc.lang)
            labels[quoted.id] = Label(family=quoted.id, role="quotation", kind="quotation", lang=doc.lang)
            docs.append(quoted)
            pair.append(quoted.id)
        negatives.append((pair[0], pair[1], "shared_quotation"))
    return negatives


# --- running dedup and scoring it -------------------------------------------------------------------------


def run_dedup(
    docs: Sequence[Document],
    config: MinHashConfig | None = None,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    shards: int = 2,
) -> DedupResult:
    """The stage's own steps (signatures per shard, then `find_duplicates`) on the given documents."""
    with tempfile.TemporaryDirectory() as tmp:
        sig_files = []
        for i in range(shards):
            shard = Path(tmp) / f"part-{i:05d}.parquet"
            rows = [d.to_row() for d in docs[i::shards]]
            pq.write_table(pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA), shard)
            sig_files.append(compute_signatures(shard, Path(tmp) / f"sig-{i:05d}.parquet", config))
        return find_duplicates(sig_files, verify_threshold=verify_threshold)


def clusters_of(removed: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Every clustered document -> its cluster's survivor."""
    out = {survivor: survivor for survivor, _ in removed.values()}
    out.update({doc: survivor for doc, (survivor, _) in removed.items()})
    return out


def expected_survivor(members: Sequence[Document]) -> str:
    """The documented rule: most trusted source, then the longer text, then the smallest id."""
    rank = {s: i for i, s in enumerate(DEFAULT_SOURCE_PRIORITY)}
    return min(members, key=lambda d: (rank.get(d.source, len(rank)), -len(d.text), d.id)).id


def _script(lang: str) -> str:
    return "spaceless" if lang in SPACELESS_LANGS else "spaced"


def evaluate(eval_set: EvalSet, result: DedupResult) -> dict:
    """Recall of planted copies per edit kind (a copy counts when it ends up in its original's cluster),
    by script and by true Jaccard; false merges (cluster pairs across families) by hard-negative kind;
    whether each cluster's survivor is the one the documented rule picks."""
    labels, by_id = eval_set.labels, {d.id: d for d in eval_set.docs}
    cluster = clusters_of(result.removed)
    members: dict[str, list[str]] = {}
    for doc_id, survivor in sorted(cluster.items()):
        members.setdefault(survivor, []).append(doc_id)
    same = [pair for group in members.values() for pair in itertools.combinations(group, 2)]

    def joined(a: str, b: str) -> bool:
        return a in cluster and cluster.get(a) == cluster.get(b)

    per_kind: dict[str, dict] = {}
    for doc_id, lab in labels.items():
        if lab.role != "copy":
            continue
        for key in (lab.kind, f"{lab.kind}/{_script(lab.lang)}"):
            row = per_kind.setdefault(key, {"copies": 0, "found": 0, "jaccard_min": 1.0, "jaccard_sum": 0.0})
            row["copies"] += 1
            row["found"] += joined(doc_id, lab.of)
            row["jaccard_min"] = min(row["jaccard_min"], lab.jaccard)
            row["jaccard_sum"] += lab.jaccard
    for row in per_kind.values():
        row["recall"] = round(row["found"] / row["copies"], 4)
        row["jaccard_mean"] = round(row.pop("jaccard_sum") / row["copies"], 3)
        row["jaccard_min"] = round(row["jaccard_min"], 3)

    by_lang: dict[str, list[int]] = {}
    for doc_id, lab in labels.items():
        if lab.role == "copy" and lab.kind in MUST_FIND:
            row = by_lang.setdefault(lab.lang, [0, 0])
            row[0] += 1
            row[1] += joined(doc_id, lab.of)

    buckets: dict[str, list[int]] = {}
    for doc_id, lab in labels.items():
        if lab.role == "copy":
            edge = next(e for e in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.0) if lab.jaccard >= e)
            b = buckets.setdefault(f">={edge:.1f}", [0, 0])
            b[0] += 1
            b[1] += joined(doc_id, lab.of)

    false_pairs = sorted((a, b) for a, b in same if labels[a].family != labels[b].family)
    negatives = _negative_pairs(eval_set)
    negative_kind = _negative_kinds(eval_set)
    for a, b in false_pairs:
        negatives[negative_kind(a, b)]["merged"] += 1
    for a, b, kind in eval_set.negatives:  # how close the built negatives come to the bar
        row = negatives[kind]
        row["jaccard_max"] = round(max(row.get("jaccard_max", 0.0), true_jaccard(by_id[a], by_id[b])), 3)

    survivors = {s: expected_survivor([by_id[d] for d in group]) == s for s, group in members.items()}
    kept_originals = sum(labels[s].role == "original" for s in survivors)
    return {
        "docs": len(eval_set.docs),
        "copies": sum(lab.role == "copy" for lab in labels.values()),
        "recall_by_kind": dict(sorted(per_kind.items())),
        "recall_by_true_jaccard": {
            k: {"copies": v[0], "recall": round(v[1] / v[0], 4)} for k, v in sorted(buckets.items())
        },
        "must_find_recall_by_lang": {
            k: {"copies": v[0], "recall": round(v[1] / v[0], 4)} for k, v in sorted(by_lang.items())
        },
        "predicted_pairs": len(same),
        "false_merge_pairs": len(false_pairs),
        "precision": round(1 - len(false_pairs) / len(same), 4) if same else 1.0,
        "false_merges": false_pairs[:20],
        "hard_negatives": dict(sorted(negatives.items())),
        "clusters": len(survivors),
        "survivor_follows_rule": sum(survivors.values()),
        "survivor_is_an_original": kept_originals,
    }


def _translation_key(doc: Document) -> str | None:
    """Documents with the same key are translations of each other: a `translation_of` link, or the same
    UDHR part in different languages."""
    if doc.id.startswith("udhr-"):
        return "udhr-" + doc.id.rsplit("-", 1)[1]
    return doc.meta.get("translation_of") or (doc.id if doc.lang == "en" and doc.id.startswith("ref-en-") else None)


def _negative_kinds(eval_set: EvalSet) -> Callable[[str, str], str]:
    """Classifier of a pair of distinct families: a built negative's kind, translation, same language, other."""
    explicit = {frozenset((a, b)): kind for a, b, kind in eval_set.negatives}
    keys = {d.id: _translation_key(d) for d in eval_set.docs}

    def kind(a: str, b: str) -> str:
        if frozenset((a, b)) in explicit:
            return explicit[frozenset((a, b))]
        if keys[a] is not None and keys[a] == keys[b]:
            return "translation"
        return "same_language" if eval_set.labels[a].lang == eval_set.labels[b].lang else "other"

    return kind


def _negative_pairs(eval_set: EvalSet) -> dict[str, dict[str, int]]:
    """How many pairs of each hard-negative kind the set holds (merged counts start at 0). The natural
    ones are pairs of distinct originals: translations, and documents in the same language."""
    counts = Counter(kind for _, _, kind in eval_set.negatives)
    labels = eval_set.labels
    heads = [d for d in eval_set.docs if labels[d.id].role == "original" and labels[d.id].family == d.id]
    keys = Counter(k for k in map(_translation_key, heads) if k is not None)
    langs = Counter(d.lang for d in heads)
    counts["translation"] = sum(n * (n - 1) // 2 for n in keys.values())
    counts["same_language"] = sum(n * (n - 1) // 2 for n in langs.values())
    counts["other"] = 0
    return {kind: {"pairs": n, "merged": 0} for kind, n in counts.items()}
