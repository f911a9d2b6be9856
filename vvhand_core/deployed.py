"""What hand_pose_node runs by default: the deployed defaults, defined once (no ROS here).

The node's parameters (``vvhand_ros.node_params``), ``config/vvhand.yaml``, docs/ros.md,
``vvhand replay`` (offline and live), ``make demo`` and the benchmarks that measure "what
the node runs" take their defaults from :data:`DEPLOYED`; ``test/test_deployed.py``
compares the values (not only the names) everywhere they are written down. The library's
own config classes (``PipelineConfig``, ``FitConfig``) keep neutral defaults for library
use (no fit, one hand's rules); :meth:`DeployedDefaults.pipeline_options` and
:meth:`DeployedDefaults.fit_config` turn the deployed values into them.
"""

from __future__ import annotations

from dataclasses import dataclass

from vvhand_core.fit.fit import FitConfig


@dataclass(frozen=True)
class DeployedDefaults:
    """The node's defaults, in vvhand_core's units (named in the fields: mm).

    The node's parameters hold the lengths in metres (cube_mm -> cube_m; smoothing_beta in
    1/m): vvhand_ros.param_units converts; docs/ros.md describes each parameter.
    """

    # pipeline
    backend: str = "auto"
    selector: str = "student"
    num_views: int = 3
    fusion: str = "confidence"
    cube_mm: float = 250.0
    localiser: str = "detector"
    min_depth_mm: float = 200.0
    max_depth_mm: float = 1200.0
    max_hands: int = 2
    mirror: bool = False
    # the hand-model fit
    fit: bool = True
    fit_iterations: int = 8
    fit_max_residual_mm: float = 5.0  # a larger residual: published as no hand (phantom)
    # outputs
    smoothing: bool = True
    smoothing_min_cutoff_hz: float = 1.0
    smoothing_beta: float = 0.02
    smoothing_d_cutoff_hz: float = 1.0
    track_jump_mm: float = 80.0
    track_max_gap_s: float = 0.5
    confidence_scale_mm: float = 20.0

    @property
    def mode(self) -> str:
        """The deployed selection mode as the benches name it, e.g. "student-3"."""
        return f"{self.selector}-{self.num_views}"

    def fit_config(self, **changes: object) -> FitConfig | None:
        """The node's FitConfig (None when the fit is off); ``changes`` override fields."""
        if not self.fit:
            return None
        values = {"iterations": self.fit_iterations,
                  "max_residual_mm": self.fit_max_residual_mm} | changes
        return FitConfig(**values)

    def pipeline_options(self) -> dict:
        """``PipelineConfig`` fields of the deployed pipeline.

        Device, renderer and backend are left out: "auto" is resolved where the pipeline
        is loaded (``vvhand_core.load``), and benches choose their own.
        """
        return {"selector": self.selector, "num_views": self.num_views,
                "fusion": self.fusion, "cube_mm": self.cube_mm, "localiser": self.localiser,
                "min_depth_mm": self.min_depth_mm, "max_depth_mm": self.max_depth_mm,
                "max_hands": self.max_hands, "mirror": self.mirror,
                "fit": self.fit_config()}


DEPLOYED = DeployedDefaults()
