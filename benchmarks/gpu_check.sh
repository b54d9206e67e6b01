#!/usr/bin/env bash
# The GPU checks in one call, for when a device machine is lent (see the device tool's README): installs
# nothing beyond the project itself, runs the training benchmark on CUDA (MFU of GPT-2 small in bf16, target
# >= 40% on one H100) and a short real training run through the same entry point as the Dagster op, and
# prints JSON. Under five minutes. Usage, from the repository root:  bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-$(mktemp -d)}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" >&2
"$PY" -m benchmarks.train --device cuda --shapes small gpt2 --architectures decoder_only encoder_only \
    encoder_decoder --styles llama --steps 50 --max-seconds 40 > "$OUT/train_bench.json"
# A short training run on CUDA: the sample corpus through the tokenizer, then 200 steps of the gpu profile's
# model at a smaller batch, with bf16 autocast and compile, through fm_pipeline.training.run.
export FM_PIPELINE_HOME="$OUT/home" DAGSTER_HOME="$OUT/home/dagster"
mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/"
"$PY" - <<'PYEOF' > "$OUT/train_run.json"
import json, os, sys
import dagster as dg
from fm_pipeline.definitions import defs
from fm_pipeline.materialize import materialize_all

cfg = {"pretrained_checkpoint": {"ops": {"pretrained_checkpoint": {"ops": {"prepare_pretraining": {"config": {
    "profile": "gpu", "steps": 200, "batch_size": 8, "block_size": 256, "device": "cuda"}}}}}}}
with dg.DagsterInstance.get() as instance:
    materialize_all(instance, cfg, upto="pretrained_checkpoint")
    (rec,) = instance.fetch_materializations(dg.AssetKey("pretrained_checkpoint"), limit=1).records
    meta = {k: v.value for k, v in rec.asset_materialization.metadata.items() if k.startswith(("eval/", "train/"))}
print(json.dumps(meta, default=str))
PYEOF
"$PY" -c "import json,sys; print(json.dumps({'train_benchmark': json.load(open(sys.argv[1])), 'train_run': json.load(open(sys.argv[2]))}, indent=2))" \
    "$OUT/train_bench.json" "$OUT/train_run.json"
