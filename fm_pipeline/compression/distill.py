"""Knowledge distillation: a smaller student (fewer layers or narrower) trained on the teacher's softened
next-token distribution (Hinton et al.: T²·KL(p_teacher^T ‖ p_student^T)) mixed with the usual cross-entropy
on the real next token, and optionally on the teacher's hidden states (FitNets: the student's residual
stream, projected to the teacher's width by a learned map, matched by MSE) and attention maps (TinyBERT,
MiniLM: KL between the teacher's and the student's attention probabilities, per head and query; a student
layer imitates the teacher layer `layer_map` gives it, and when it has fewer heads each of its heads imitates
the mean distribution of a group of consecutive teacher heads).

Progressive distillation goes teacher -> intermediate(s) -> student, each stage distilled from the previous,
so no stage has to bridge the whole capacity gap at once (Mirzadeh et al. 2020, teacher assistants).

The student starts from what of the teacher fits: the token table (projected onto its top principal
directions when the student is narrower) and, at equal width, evenly spaced teacher layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.compression.tuning import TuneData, tune
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import IGNORE_INDEX, build_model
from fm_pipeline.training.finetune import FinetuneResult


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float = 2.0,
    alpha: float = 0.5, pad_id: int = 0,
) -> torch.Tensor:
    """alpha · T² · KL(teacher ‖ student) at temperature T + (1 - alpha) · cross-entropy on `targets`, both
    averaged over the predicted positions (not -100, not padding). T² keeps the soft term's gradients on the
    scale of the hard one's as T changes."""
    keep = (targets != IGNORE_INDEX) & (targets != pad_id)
    if bool(keep.all()):  # the common case: no copy of vocabulary-wide rows just to select them all
        s, t, hard = student_logits.flatten(0, -2).float(), teacher_logits.flatten(0, -2).float(), targets.flatten()
    else:
        s, t, hard = student_logits[keep].float(), teacher_logits[keep].float(), targets[keep]
    if temperature != 1.0:
        s, t = s / temperature, t / temperature
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    loss = alpha * temperature**2 * kl
    if alpha < 1.0:
        loss = loss + (1.0 - alpha) * F.cross_entropy(s * temperature if temperature != 1.0 else s, hard)
    return loss


def hidden_loss(student_hidden: list[torch.Tensor], teacher_hidden: list[torch.Tensor],
                projections: nn.ModuleList) -> torch.Tensor:
    """Mean over layer pairs of MSE(project(h_student), h_teacher) / mean(h_teacher²): scale-free, so one
    weight suits any model."""
    losses = [F.mse_loss(p(s), t) / t.pow(2).mean().clamp(min=1e-8)
              for s, t, p in zip(student_hidden, teacher_hidden, projections, strict=True)]
    return torch.stack(losses).mean()


def attention_loss(student_maps: list[torch.Tensor], teacher_maps: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layer pairs of KL(teacher ‖ student) between attention distributions, averaged over batch,
    heads and query positions. Student maps are log-probabilities (B, h_s, T, T); teacher maps probabilities
    (B, h_t, T, T), averaged over groups of h_t / h_s consecutive heads when the student has fewer."""
    losses = []
    for s_log, t_prob in zip(student_maps, teacher_maps, strict=True):
        h_s, h_t = s_log.shape[1], t_prob.shape[1]
        if h_t != h_s:
            if h_t % h_s:
                raise ValueError(f"teacher heads {h_t} are not a multiple of student heads {h_s}")
            t_prob = t_prob.unflatten(1, (h_s, h_t // h_s)).mean(2)
        kl = (t_prob * (t_prob.clamp_min(1e-12).log() - s_log)).sum(-1)
        losses.append(kl.mean())
    return torch.stack(losses).mean()


def count_parameters(config: ModelConfig) -> int:
    """Parameters of a model of this config (built on the meta device: no memory, no init cost)."""
    with torch.device("meta"):
        model = build_model(config)
    return sum(p.numel() for p in model.parameters())


def student_config(
    teacher: ModelConfig, n_layer: int | None = None, d_model: int | None = None, param_ratio: float | None = 0.5
) -> ModelConfig:
    """The teacher's config with fewer layers and/or a narrower width. An unset `d_model` is chosen (a multiple
    of 2·n_head, so RoPE's head_dim stays even) to bring the total parameters closest to `param_ratio` of the
    teacher's; the MLP width follows the teacher's d_ff / d_model."""
    n_layer = n_layer or teacher.n_layer
    base = {k: v for k, v in teacher.to_dict().items() if k not in ModelConfig.LAYER_FIELDS}
    kv_ratio = teacher.n_head // teacher.n_kv_head

    def make(width: int) -> ModelConfig:
        return ModelConfig.from_dict({**base, "n_layer": n_layer, "d_model": width,
                                      "n_kv_head": teacher.n_head // kv_ratio,
                                      "d_ff": round(teacher.d_ff * width / teacher.d_model)})

    if d_model is not None:
        return make(d_model)
    if param_ratio is None:
        return make(teacher.d_model)
    target = param_ratio * count_parameters(teacher)
    step = 2 * teacher.n_head
    widths = range(step, teacher.d_model + 1, step)
    return min((make(w) for w in widths), key=lambda c: abs(count_parameters(c) - target))


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """The teacher layer each student layer imitates: evenly spaced, the last to the last."""
    return [round((j + 1) * n_teacher / n_student) - 1 for j in range(n_student)]


@torch.no_grad()
def init_student(student: nn.Module, teacher: nn.Module) -> None:
    """Copy what the shapes allow: the token table (PCA-projected when narrower) and, at equal width, the
    mapped layers and final norm."""
    s_cfg, t_cfg = student.config, teacher.config
    table = teacher.embed.tokens.weight.detach()
    if s_cfg.d_model == t_cfg.d_model:
        student.embed.tokens.weight.copy_(table)
        shape = ("d_ff", "n_head", "n_kv_head", "mlp", "norm")
        same_blocks = all(getattr(s_cfg, f) == getattr(t_cfg, f) for f in shape)
        if same_blocks and t_cfg.layer_n_head is None and t_cfg.layer_d_ff is None:
            for j, i in enumerate(layer_map(s_cfg.n_layer, t_cfg.n_layer)):
                student.decoder.blocks[j].load_state_dict(teacher.decoder.blocks[i].state_dict())
            student.decoder.norm.load_state_dict(teacher.decoder.norm.state_dict())
    else:
        _, _, vh = torch.linalg.svd(table - table.mean(0), full_matrices=False)
        student.embed.tokens.weight.copy_(table @ vh[: s_cfg.d_model].T)
    if not s_cfg.tie_embeddings and s_cfg.d_model == t_cfg.d_model:
        student.head.weight.copy_(teacher.head.weight)


class Distiller(nn.Module):
    """The trainable part of distillation: the student and, for hidden-state distillation, one projection per
    student layer. The teacher is held outside the module tree, so the optimizer never sees it."""

    def __init__(self, student: nn.Module, teacher: nn.Module, hidden: bool, attention: bool = False) -> None:
        super().__init__()
        self.attention = attention
        self.student = student
        object.__setattr__(self, "teacher", teacher.eval().requires_grad_(False))
        n_s, n_t = student.config.n_layer, teacher.config.n_layer
        self.pairs = layer_map(n_s, n_t)
        d_s, d_t = student.config.d_model, teacher.config.d_model
        self.projections = nn.ModuleList(nn.Linear(d_s, d_t, bias=False) for _ in range(n_s)) if hidden else None
        if hidden and d_s == d_t:
            for p in self.projections:
                nn.init.eye_(p.weight)


def _attention_log_probs(attn: nn.Module, x: torch.Tensor, rope: nn.Module | None) -> torch.Tensor:
    """(B, heads, T, T) causal attention log-probabilities, recomputed from the attention's input as its SDPA
    kernel does not return them (key/value heads repeated for grouped-query attention)."""
    B, T, _ = x.shape
    heads = attn.qkv(x).view(B, T, -1, attn.head_dim).transpose(1, 2)
    qk = heads[:, : attn.n_head + attn.n_kv_head]
    if rope is not None:
        qk = rope(qk)
    q, k = qk.split((attn.n_head, attn.n_kv_head), dim=1)
    k = k.repeat_interleave(attn.n_head // attn.n_kv_head, dim=1)
    scores = (q @ k.transpose(-1, -2)) / attn.head_dim**0.5
    future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
    return F.log_softmax(scores.float().masked_fill(future, -1e9), dim=-1)


def _features(model: nn.Module, idx: torch.Tensor, attention: bool = False
              ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Logits, every block's output (the residual stream after it) and, with `attention`, every block's
    attention log-probabilities."""
    outputs: list[torch.Tensor] = []
    maps: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for b in model.decoder.blocks]
    if attention:
        hooks += [b.attn.register_forward_hook(
            lambda m, args, kwargs, _out: maps.append(_attention_log_probs(m, args[0], kwargs.get("rope"))),
            with_kwargs=True) for b in model.decoder.blocks]
    try:
        logits, _ = model(idx)
    finally:
        for h in hooks:
            h.remove()
    return logits, outputs, maps


def distill(
    teacher: nn.Module, student: nn.Module, data: TuneData, steps: int = 300, lr: float = 1e-3,
    temperature: float = 2.0, alpha: float = 0.5, hidden_weight: float = 0.0, attention_weight: float = 0.0,
    regularizer: Callable[[], torch.Tensor] | None = None, before_step: Callable[[int], None] | None = None,
) -> tuple[nn.Module, FinetuneResult]:
    """Train `student` (in place) on the teacher's soft targets; `hidden_weight` > 0 adds feature distillation,
    `attention_weight` > 0 attention-map distillation, `regularizer()` a term of the student's own (AdaLoRA's
    orthogonality); `before_step(step)` runs before each step (AdaLoRA's rank allocation)."""
    trainable = [p.requires_grad for p in teacher.parameters()]
    distiller = Distiller(student, teacher, hidden=hidden_weight > 0, attention=attention_weight > 0)
    pad_id = teacher.config.pad_id

    def loss_fn(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        idx, targets = batch["idx"], batch["targets"]
        with torch.no_grad():
            t_logits, t_hidden, t_maps = _features(module.teacher, idx, module.attention)
        s_logits, s_hidden, s_maps = _features(module.student, idx, module.attention)
        loss = distillation_loss(s_logits, t_logits, targets, temperature, alpha, pad_id)
        if module.projections is not None:
            loss = loss + hidden_weight * hidden_loss(s_hidden, [t_hidden[i] for i in module.pairs],
                                                      module.projections)
        if module.attention:
            loss = loss + attention_weight * attention_loss(s_maps, [t_maps[i].exp() for i in module.pairs])
        return loss if regularizer is None else loss + regularizer()

    try:
        result = tune(distiller, data, steps, lr, loss_fn=loss_fn, before_step=before_step)
    finally:  # the teacher is frozen only while it teaches: a copy made of it later must train
        for param, flag in zip(teacher.parameters(), trainable, strict=True):
            param.requires_grad_(flag)
    return student.eval(), result


def progressive_distill(
    teacher: nn.Module, param_ratios: Sequence[float], data: TuneData, steps: int = 300, lr: float = 1e-3,
    seed: int = 0, **loss_weights: float,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Teacher -> a student at each of `param_ratios` (of the teacher's parameters, decreasing) in turn, each
    made from and distilled from the previous one for `steps` steps; returns the last and, per stage, its
    parameters and final loss. `loss_weights`: `distill`'s temperature, alpha, hidden_weight, attention_weight."""
    if not param_ratios or any(b >= a for a, b in zip((1.0, *param_ratios), param_ratios, strict=False)):
        raise ValueError(f"param_ratios must decrease from below 1, not {list(param_ratios)}")
    total = count_parameters(teacher.config)
    current, stages = teacher, []
    for ratio in param_ratios:
        relative = ratio * total / count_parameters(current.config)
        student = make_student(current, param_ratio=relative, seed=seed)
        student, result = distill(current, student, data, steps, lr, **loss_weights)
        stages.append({"param_ratio": count_parameters(student.config) / total, "d_model": student.config.d_model,
                       "final_loss": result.final_loss})
        current = student
    return current, stages


def make_student(teacher: nn.Module, n_layer: int | None = None, d_model: int | None = None,
                 param_ratio: float | None = 0.5, seed: int = 0, init_from_teacher: bool = True) -> nn.Module:
    """A freshly initialised student (seeded), warm-started from the teacher unless told not to."""
    torch.manual_seed(seed)
    student = build_model(student_config(teacher.config, n_layer, d_model, param_ratio))
    student = student.to(next(teacher.parameters()).device)
    if init_from_teacher:
        init_student(student, teacher)
    return student

