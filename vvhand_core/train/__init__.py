"""Training: stage 1 (Eq. 5), stage 2 (Eq. 4) and the phased CPU recipe.

Stage 1 trains A2J + teacher, stage 2 distils the student; the phased recipe trains all
three networks in one wall-clock budget.

``vvhand train stage1|stage2|phased --config YAML [--set key=value ...] [--out DIR]
[--resume]`` (vvhand_core.train.cli). Modules: config (the shared and stage-1/2
dataclasses), phased_config (the recipe's), configio (YAML, overrides, dict <->
dataclass), splits (which frames), samples (frame -> crop sample -> rendered views and
targets), cache (frame cache: crops once, re-cropped every epoch), stage1, stage2, loop
(epochs, validation, checkpoints, resume), dist (torchrun / DDP set-up), phases (the
recipe's three phases), phased (its budget loop, checkpoints, legs), schedule (warm-up +
cosine over wall-clock time), curves (learning curves -> plot + results.md), export
(fp16 shipping copy + record).
"""
