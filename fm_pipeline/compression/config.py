"""Every compression knob as a plain dataclass field, the techniques by name, and the two profiles: `cpu_small`
(the default of `make run`) and `thorough`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fm_pipeline.compression.builders import BUILDERS
from fm_pipeline.compression.select import OBJECTIVES
from fm_pipeline.lake.config_dicts import known_fields, plain_dict

BASELINE = "fp32"
TECHNIQUES = (
    "dynamic_int8",          # post-training dynamic int8, the fastest kernel on the device (fbgemm on CPU)
    "dynamic_int8_torchao",  # the same with torchao's kernels, measured beside it
    "weight_int8",
    "weight_int4",
    "qat_int8",              # quantization-aware fine-tune, then dynamic int8
    "prune_magnitude",       # global magnitude, one shot + recovery fine-tune
    "prune_gradual",         # global magnitude on a cubic schedule during the fine-tune
    "prune_structured",      # heads and MLP channels removed + recovery fine-tune
    "prune_int8",            # the same, then dynamic int8: fewer and cheaper products, faster also on AVX2-only CPUs
    "distill",               # a student at about half the parameters
    "lowrank",               # SVD at the rank keeping `lowrank_energy`
    *BUILDERS,               # static int8, lottery ticket, attention/feature and progressive distillation, Tucker,
)                            # LoRA and AdaLoRA on a pruned base (`builders.py`)
CPU_SMALL = ("dynamic_int8", "weight_int4", "prune_int8")
"""The default profile's candidates, none fine-tuned. Dynamic int8 is fast where the CPU has int8 dot products
(AVX512-VNNI, AMX), weight-only int4 the smallest, and structured pruning then int8 the one that is at least 1.3x
faster than fp32 on AVX2-only CPUs too, where int8 products alone gain about 1.1x on the sample model (at 128
wide, norms, attention and per-operator overhead cost as much as the products). Pruning removes half of each
layer's heads and 5/8 of its MLP channels by Taylor importance on the domain's training documents, then refits
the attention output and MLP down projections by least squares to the adapted model's block outputs on that text
(`reconstruct.py`: closed form, about a second). The cut alone costs an adapted model +6-12% domain perplexity; with
the refit, +0-0.5% on validation. The fractions still shrink when the training documents lose more than 1.5%. A
recovery fine-tune is no substitute: on the general token files it moves an adapted model off its domain (+8-30%),
and on the domain's own text it trains the model further rather than recovering it. The comparisons that cost a
fine-tune each (QAT, magnitude and recovered pruning, distillation, low rank) and torchao's int8 path (several
times slower than fp32 in eager mode on CPUs) run in "thorough"."""
CONTRACT = ("compression/method", "compression/size_ratio", "compression/ppl_ratio", "compression/speedup")


@dataclass
class CompressConfig:
    """Every knob as a plain field; `profile` gives presets."""

    techniques: tuple[str, ...] = TECHNIQUES
    objective: str = "size_at_speed"
    """Among candidates within budget publish the smallest of those at least `min_speedup` times faster than
    fp32 at batch 1, else the fastest ("size_at_speed"); or the smallest ("size"); or the fastest ("speed")."""
    min_speedup: float = 1.3
    max_ppl_ratio: float = 1.02
    """The quality budget: domain perplexity at most this multiple of the uncompressed model's."""
    budget_metric: str = "domain_ppl_ratio"
    backend: str = "auto"
    """Kernel of `dynamic_int8` and `qat_int8`: "auto" (fbgemm via torch.ao on CPU), "torch_ao", "torchao"."""
    batch_size: int = 16
    seed: int = 0
    recovery_steps: int = 100
    recovery_lr: float = 3e-4
    qat_steps: int = 100
    qat_lr: float = 1e-4
    sparsity: float = 0.5
    head_fraction: float = 0.25
    mlp_fraction: float = 0.5
    importance_batches: int = 8
    prune_max_ppl_ratio: float | None = None
    """Structured pruning shrinks its fractions until perplexity on held-out tuning batches is within this
    multiple of the teacher's, on the calibration documents (None: prune the configured fractions whatever
    they cost)."""
    calibration_max_docs: int | None = 16
    """Calibration documents `prune_max_ppl_ratio` is checked on (None: all)."""
    calibration_tokens: int = 65536
    """About how many tokens of the calibration documents structured pruning scores importance and refits on."""
    reconstruct_batches: int = 8
    """Batches (of `batch_size` windows) on which structured pruning refits the kept weights to the unpruned
    blocks' outputs (`reconstruct.reconstruct_pruned`); 0: no refit."""
    reconstruct_ridge: float = 1e-2
    distill_steps: int = 300
    distill_lr: float = 2e-3
    student_layers: int | None = None
    student_d_model: int | None = None
    student_param_ratio: float = 0.5
    temperature: float = 2.0
    alpha: float = 0.5
    hidden_weight: float = 0.0
    lowrank_energy: float = 0.9
    attention_weight: float = 1.0
    feature_weight: float = 1.0
    """`distill_features`' weights of attention-map KL and hidden-state MSE (`distill` uses `hidden_weight`)."""
    progressive_ratios: tuple[float, ...] = (0.75,)
    """`distill_progressive`'s intermediates (parameter shares), before `student_param_ratio`."""
    lottery_rounds: int = 3
    lottery_rate: float = 0.2
    lottery_steps: int = 100
    lottery_rewind_step: int = 0
    """0: rewind to the pretrained weights (fine-tuning-stage ticket); k: to step k of a dense fine-tune."""
    tucker_rank_ratio: float = 0.5
    lora_rank: int = 8
    adalora_initial_rank: int = 12
    lora_steps: int = 100
    lora_lr: float = 1e-3
    calibration_batches: int = 8
    calibration_percentile: float = 100.0
    int4_group_size: int = 32
    eval_max_docs: int | None = None
    """Documents per validation set (None: all)."""
    threads: int = 1
    """Intra-op threads while evaluating and timing (fixed, so numbers compare across runs)."""
    timing_rounds: int = 5
    prompt_tokens: int = 64
    new_tokens: int = 32
    timing_max_seconds: float = 5.0
    compile: bool = False
    """Time generation compiled by Inductor (`inference.compile_for_inference`) rather than eager: on CPUs with
    int8 matrix units torchao's int8 kernels then run several times faster than in eager mode. Each candidate
    then first spends tens of seconds compiling."""
    keep_candidates: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.techniques) - set(TECHNIQUES))
        if unknown:
            raise ValueError(f"unknown techniques {unknown}; choose from {TECHNIQUES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        self.techniques = tuple(self.techniques)
        self.progressive_ratios = tuple(self.progressive_ratios)

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> CompressConfig:
        """"cpu_small" (the default of `make run`): `CPU_SMALL`, post-training techniques only (no fine-tune), one of
        them faster than fp32 on AVX2-only CPUs too, speed timed over 16 new tokens a round (timing is most of its
        time);
        "thorough": every technique compared, longer fine-tunes, more timing rounds, and generation timed compiled
        (as deployed)."""
        if name == "cpu_small":
            base = cls(techniques=CPU_SMALL, head_fraction=0.5, mlp_fraction=0.625, recovery_steps=0,
                       prune_max_ppl_ratio=1.015,
                       new_tokens=16)
        elif name == "thorough":
            base = cls(recovery_steps=300, qat_steps=300, distill_steps=1000, lottery_steps=300, lora_steps=300,
                       timing_rounds=9, new_tokens=48, compile=True)
        else:
            raise ValueError(f"unknown profile {name!r}; choose from ['cpu_small', 'thorough']")
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressConfig:
        """Unknown keys are refused, so a misspelt knob fails loudly."""
        return cls(**known_fields(cls, data))
