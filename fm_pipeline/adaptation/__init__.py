"""Domain and language adaptation of a pretrained checkpoint (domain: `adapt.adapt`; language:
`language.adapt_language`): continued pretraining, vocabulary expansion, LoRA adapters, bottleneck language
adapters, contrastive alignment and ULMFiT fine-tuning schedules, with before/after evaluation (domain and general
perplexity, a domain probe).

Kept free of imports: the code location reads the configs (`config`, `language_config`) without torch."""
