"""A small random checkpoint whose A2J heads keep their inputs' scale (ONNX parity tests).

With the default initialisation the heads' outputs are nearly constant, so every view
would give about the same joints and a parity test could not tell networks apart; these
weights make the joints depend on the input.
"""

from __future__ import annotations

import torch

from vvhand_core.checkpoint import load_checkpoint, save_checkpoint, save_random_checkpoint


def random_model(path, seed):
    """Write the checkpoint to ``path`` (width 0.125, seeded, A2J heads re-drawn); its path."""
    m = load_checkpoint(save_random_checkpoint(path, width=0.125, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in (m.a2j.response_head, m.a2j.offset_head, m.a2j.depth_head):
            for conv in [*[c for c in head.body if isinstance(c, torch.nn.Conv2d)], head.out]:
                fan_in = conv.weight[0].numel()
                std = (2.0 / fan_in) ** 0.5 if conv is not head.out else fan_in ** -0.5
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * std)
    return save_checkpoint(path, m.a2j, m.student, m.teacher, m.skeleton, m.model_config,
                           m.meta)
