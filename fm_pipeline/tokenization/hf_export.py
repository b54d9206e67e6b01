"""Export the SentencePiece BPE model as a Hugging Face `tokenizer.json` (the `tokenizers` library), giving
the same ids as SentencePiece.

How each part of SentencePiece maps onto `tokenizers`:

- normalization: the model's own precompiled character map (`normalizers.Precompiled`, the very table
  SentencePiece applies, so `nmt_nfkc_cf`'s NFKC + case folding + NMT control/whitespace rules come out
  identical rather than approximated by NFKC + Lowercase); then, as the model's normalizer spec says, runs of
  spaces collapsed and leading/trailing ones stripped (`remove_extra_whitespaces`), the dummy "▁" prefix
  (`add_dummy_prefix`) and spaces escaped as "▁";
- pre-tokenization: split before every "▁" run that follows other text. No piece crosses such a point
  (SentencePiece only lets "▁" open a piece, or fill a whitespace-only one), so the split changes nothing
  and lets `tokenizers` cache words; a model with pieces that cross it gets no pre-tokenizer;
- model: BPE over the same vocabulary (ids = SentencePiece ids) with `byte_fallback` and the `<0xNN>` pieces.
  SentencePiece BPE merges, at each step, the adjacent pair whose concatenation is the highest-scored
  piece; the merges list holds every split of every piece into two pieces, ranked by that piece's score;
- decoder: "▁" back to spaces, byte pieces back to UTF-8, the dummy prefix's space dropped;
- `<PAD>`, `<UNK>`, `<BOS>`, `<EOS>`, `<MASK>`: special added tokens, ids 0-4. No post-processor: like
  `SentencePieceProcessor.encode`, encoding adds no BOS/EOS.

Where the ids can differ (tests pin both cases and check parity on everything else, including fuzzed text):

- normalization rules other than identity (the default) on clusters of several code points whose first one
  the table changes: `Precompiled` looks a grapheme cluster up by its first code point's entry, SentencePiece
  matches the longest entry, which can span the cluster. With `nmt_nfkc_cf`: an uppercase letter + combining
  mark loses the mark in `tokenizers` ("A" + U+0301 -> "a", SentencePiece "á"), and half-width kana + sound
  mark stays two characters ("ｶﾞ" -> "ガ" in SentencePiece). In NFC text (what curation writes) that leaves
  letters with no precomposed form ("X̂") and half-width kana; identity normalization has no table and no
  difference;
- a document containing the literal text of a special token ("<BOS>", "<MASK>", ...): `tokenizers` turns it
  into that token, SentencePiece keeps it as text. Set `tokenizer.encode_special_tokens = True` (not stored in
  the JSON) for SentencePiece's behaviour.

SentencePiece breaks a tie between equal-score candidates by position and `tokenizers` by merge rank; they
could only disagree for two different pairs that make the same piece and overlap, which 50,000 fuzzed
strings of concatenated pieces and periodic runs ("-----", "ㅋㅋㅋ") never produced.
"""

from __future__ import annotations

import re
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from fm_pipeline.lake.atomic import atomic_write_text
from fm_pipeline.tokenization.spm_model import BPE, PieceType, SpmModel, read_model

SPACE = "\u2581"
_CROSSES_WORD_START = re.compile(f"[^{SPACE}]{SPACE}")


def _merges(model: SpmModel) -> list[tuple[str, str]]:
    """Every (left, right) split of a normal piece into two normal pieces, best piece first."""
    ids = {p.piece: i for i, p in enumerate(model.pieces) if p.type == PieceType.NORMAL}
    ranked = []
    for piece, i in ids.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in ids and right in ids:
                ranked.append((-model.pieces[i].score, i, ids[left], ids[right], left, right))
    return [(left, right) for *_, left, right in sorted(ranked)]


def build_hf_tokenizer(model_path: Path) -> Tokenizer:
    """A `tokenizers.Tokenizer` equivalent to the SentencePiece BPE model at `model_path`."""
    model = read_model(Path(model_path))
    if model.trainer.model_type != BPE:
        raise ValueError(f"{model_path} is not a BPE model (model_type {model.trainer.model_type})")
    if model.trainer.treat_whitespace_as_suffix:
        raise ValueError(f"{model_path} puts '▁' at the end of pieces (treat_whitespace_as_suffix): not supported")
    if any(p.type == PieceType.USER_DEFINED for p in model.pieces):
        raise ValueError(f"{model_path} has user-defined symbols: not supported")
    unk = next(p.piece for p in model.pieces if p.type == PieceType.UNKNOWN)
    tokenizer = Tokenizer(models.BPE(
        vocab={p.piece: i for i, p in enumerate(model.pieces)},
        merges=_merges(model),
        unk_token=unk,
        fuse_unk=True,
        byte_fallback=model.trainer.byte_fallback,
    ))

    spec = model.normalizer
    steps: list[normalizers.Normalizer] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Replace(Regex("^ | $"), "")]
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPACE))
    if spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", SPACE))
    tokenizer.normalizer = normalizers.Sequence(steps)

    normal = (p.piece for p in model.pieces if p.type == PieceType.NORMAL)
    if not any(_CROSSES_WORD_START.search(piece) for piece in normal):
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(f"{SPACE}*[^{SPACE}]+|{SPACE}+"), behavior="isolated")

    steps_back: list[decoders.Decoder] = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if spec.add_dummy_prefix:
        steps_back.append(decoders.Strip(" ", 1, 0))
    tokenizer.decoder = decoders.Sequence(steps_back)

    tokenizer.add_special_tokens([
        AddedToken(p.piece, special=True, normalized=False)
        for p in model.pieces if p.type in (PieceType.CONTROL, PieceType.UNKNOWN)
    ])
    return tokenizer


def export_tokenizer_json(model_path: Path, out_path: Path) -> Path:
    """Write `tokenizer.json` for `model_path` atomically; the same model always gives the same bytes."""
    out_path = Path(out_path)
    atomic_write_text(out_path, build_hf_tokenizer(model_path).to_str(pretty=True))
    return out_path
