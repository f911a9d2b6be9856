"""vvhand_core.lite: hand pose from depth with numpy, scipy and onnxruntime only (no torch).

Inference only: :class:`vvhand_core.lite.pipeline.LitePipeline` runs a directory written
by ``vvhand export-onnx`` through the shared frame flow (:mod:`vvhand_core.frame_flow`).
The modules here are numpy twins of the torch pipeline's steps (``geometry``: crop, views,
mapping back; ``render``: the z-buffer renderer; ``fusion``) and ``config``
(:class:`~vvhand_core.lite.config.LiteConfig`). Nothing here imports torch.
"""
