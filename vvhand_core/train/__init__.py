"""Training: stage 1 (A2J + teacher, Eq. 5) and stage 2 (student distillation, Eq. 4).

``vvhand train stage1|stage2 --config YAML [--set key=value ...] [--out DIR] [--resume]``
(vvhand_core.train.cli). Modules: config (dataclasses, YAML, overrides), splits (which
frames), samples (frame -> crop sample -> rendered views and targets), stage1, stage2,
loop (epochs, validation, checkpoints, resume, DDP), export (fp16 shipping copy + record).
"""
