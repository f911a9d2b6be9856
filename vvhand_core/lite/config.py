"""LiteConfig: how the torch-free pipeline runs (FrameConfig + onnxruntime threads)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vvhand_core.frame_config import FrameConfig


@dataclass
class LiteConfig(FrameConfig):
    """How :class:`~vvhand_core.lite.pipeline.LitePipeline` runs.

    :class:`~vvhand_core.frame_config.FrameConfig` (the learned detector runs from its ONNX
    export: the packaged one, or weights exported with ``vvhand detector export-onnx``) and
    num_threads, onnxruntime's intra-op threads (0 = its default), the detector's too.
    """

    num_threads: int = 0

    @property
    def backend(self) -> str:
        """Where the networks run: always onnxruntime (as ``PipelineConfig.backend``)."""
        return "onnxruntime"

    @property
    def mirror(self) -> bool:
        """The mirror pass: never (it needs torch; as ``PipelineConfig.mirror``)."""
        return False

    @classmethod
    def from_pipeline_config(cls, cfg: object, num_threads: int = 0) -> LiteConfig:
        """The LiteConfig of a ``PipelineConfig`` (device, renderer and backend ignored).

        ValueError for what only the torch pipeline has: the mirror pass.
        """
        if getattr(cfg, "mirror", False):
            raise ValueError("LitePipeline has no mirror pass (mirror must be False)")
        names = [f.name for f in dataclasses.fields(FrameConfig)]
        return cls(**{n: getattr(cfg, n) for n in names if hasattr(cfg, n)},
                   num_threads=num_threads)


__all__ = ["LiteConfig"]
