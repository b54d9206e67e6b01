#!/usr/bin/env bash
# The GPU checks in one call, for a CUDA machine that has PyTorch, NumPy, SentencePiece, safetensors and PyArrow
# but neither Dagster nor MLflow (as the device machines lent to this project), and that cannot download:
#
#   1. here, on the CPU machine:   bash benchmarks/gpu_check.sh prepare
#      runs the pipeline on the sample corpus up to tokenized_corpus and copies the tokenizer, the token files and
#      the val documents to .gpu_check/lake (git-ignored, about 1 MB);
#   2. there, with .gpu_check carried along:   bash benchmarks/gpu_check.sh
#      (with this workplace's device tool: command "bash benchmarks/gpu_check.sh", carry [".gpu_check"])
#      runs the training benchmark on CUDA (MFU of GPT-2 small in bf16; target >= 40% on one H100), then 200 steps
#      of the gpu profile's model (bf16 autocast, compiled) on those token files through fm_pipeline.training.run,
#      the entry point the Dagster op runs, and prints one JSON object. Under five minutes. Installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$PWD/.gpu_check"

if [ "${1:-}" = prepare ]; then
    export FM_PIPELINE_HOME="$DIR/home" DAGSTER_HOME="$DIR/home/dagster"
    rm -rf "$DIR" && mkdir -p "$DAGSTER_HOME" "$DIR/lake/balanced_shards" && cp dagster.yaml "$DAGSTER_HOME/"
    .venv/bin/python -c "import dagster as dg; from fm_pipeline.materialize import materialize_all
with dg.DagsterInstance.get() as instance: materialize_all(instance, upto='tokenized_corpus')"
    cp -r "$FM_PIPELINE_HOME/lake/tokenizer" "$FM_PIPELINE_HOME/lake/tokenized_corpus" "$DIR/lake/"
    cp -r "$FM_PIPELINE_HOME/lake/balanced_shards/val" "$DIR/lake/balanced_shards/"
    rm -rf "$FM_PIPELINE_HOME"
    echo "ready: carry .gpu_check and run  bash benchmarks/gpu_check.sh  on the CUDA machine" >&2
    exit 0
fi

PY=${PY:-python3}
OUT=${OUT:-$(mktemp -d)}  # the device tool brings back what is written here: JSON and logs, not checkpoints
RUN=$(mktemp -d)
DEVICE=${DEVICE:-cuda} SHAPES=${SHAPES:-small gpt2} STEPS=${STEPS:-200} BENCH_STEPS=${BENCH_STEPS:-50}
COMPILE=$([ "$DEVICE" = cuda ] && echo --compile || true)  # as the gpu profile trains; a CPU smoke test skips it
export DEVICE STEPS
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -f "$DIR/lake/tokenized_corpus/train.json" ] || { echo "no $DIR/lake: run 'bash $0 prepare' first" >&2; exit 2; }
if [ "$DEVICE" = cuda ]; then
    "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" >&2
fi
"$PY" -m benchmarks.train --device "$DEVICE" $COMPILE --shapes $SHAPES --architectures decoder_only encoder_only \
    encoder_decoder --styles llama --steps "$BENCH_STEPS" --max-seconds 40 > "$OUT/train_bench.json"
"$PY" - "$DIR/lake" "$RUN" "$OUT" <<'PYEOF'
import dataclasses, json, os, sys
from pathlib import Path
from fm_pipeline.training.config import TrainConfig

lake, run, out = sys.argv[1:]
config = TrainConfig.profile(
    "gpu", token_dir=f"{lake}/tokenized_corpus", tokenizer_path=f"{lake}/tokenizer/tokenizer.model",
    val_docs_dir=f"{lake}/balanced_shards/val", out_dir=run, steps=int(os.environ["STEPS"]),
    batch_size=8, grad_accum=1, warmup_steps=20, eval_every=100, eval_batches=10, checkpoint_every=200,
    device=os.environ["DEVICE"], compile=os.environ["DEVICE"] == "cuda",
)
config = dataclasses.replace(config, model=dataclasses.replace(config.model, block_size=256))
Path(out, "run_config.json").write_text(json.dumps(config.to_dict()))
PYEOF
"$PY" -m fm_pipeline.training.run --config "$OUT/run_config.json" 2> "$OUT/train_run.log" || {
    tail -30 "$OUT/train_run.log" >&2; exit 1; }
"$PY" -c "import json,sys; print(json.dumps({'train_benchmark': json.load(open(sys.argv[1])),
    'train_run': json.load(open(sys.argv[2]))}, indent=2))" "$OUT/train_bench.json" "$RUN/train_result.json"
