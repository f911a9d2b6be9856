"""vvhand_core: virtual-view selection for 3D hand pose from one depth image.

The library never imports ROS. Units: millimetres; camera optical frame
(x right, y down, z forward); pixels (u = column, v = row).
"""

__version__ = "0.1.0"
