"""The code location loads without torch, MLflow or matplotlib: every CLI command, the forkserver the steps fork
from and each Kubernetes step pod import `fm_pipeline.definitions`, and those three cost about 3 s of a 4 s load.
The steps that train, log or plot import them when they run."""

import json
import subprocess
import sys

HEAVY = ("torch", "mlflow", "matplotlib")
PROBE = ("import json, sys; import fm_pipeline.definitions as d; "
         "print(json.dumps({'heavy': sorted(m for m in %r if m in sys.modules), "
         "'assets': sorted(k.to_user_string() for k in d.defs.resolve_asset_graph().get_all_asset_keys())}))")
CONTRACT = {"raw_corpus", "filtered_corpus", "deduped_corpus", "balanced_shards", "tokenizer", "tokenized_corpus",
            "pretrained_checkpoint", "domain_corpus", "domain_adapted_checkpoint", "language_adapted_checkpoint",
            "compressed_model"}


def _load(extra_import: str = "") -> dict:
    code = (extra_import + "; " if extra_import else "") + PROBE % (HEAVY,)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_code_location_loads_without_torch_mlflow_or_matplotlib():
    loaded = _load()
    assert loaded["heavy"] == []
    assert set(loaded["assets"]) >= CONTRACT


def test_the_probe_sees_a_heavy_import():
    assert _load("import fm_pipeline.modeling.checkpoint")["heavy"] == ["torch"]
