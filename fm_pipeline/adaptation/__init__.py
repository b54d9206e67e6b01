"""Domain and language adaptation of a pretrained checkpoint (language: `language.adapt_language`): continued
pretraining, vocabulary expansion, LoRA adapters, bottleneck language adapters, contrastive alignment and
ULMFiT fine-tuning schedules, with before/after evaluation (domain and general perplexity, a domain probe)."""

from fm_pipeline.adaptation.adapt import AdaptResult, adapt
from fm_pipeline.adaptation.config import STRATEGIES, AdaptConfig

__all__ = ["STRATEGIES", "AdaptConfig", "AdaptResult", "adapt"]
