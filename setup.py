"""pip install of vvhand_core and vvhand_ros with the `vvhand` command.

For people without a colcon workspace: `pip install .` (the ROS message package
`vvhand.msg` comes from the CMake build, see README).
"""

from setuptools import find_packages, setup

setup(
    name="vvhand-lib",  # not "vvhand": that distribution is the CMake-built ROS package
    version="0.1.0",
    description="3D hand pose from one depth image by virtual-view selection (ROS 2 + library)",
    packages=find_packages(include=["vvhand_core", "vvhand_core.*", "vvhand_ros", "vvhand_ros.*"]),
    package_data={"vvhand_core": ["assets/*.pt", "assets/*.md", "assets/*.yaml", "assets/*.json",
                                  "assets/*.onnx"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "scipy",
        "pillow",
        "matplotlib",
        "tqdm",
        "pyyaml",
        "rosbags",
        # torch: install the build for your machine first (see README); any range
        # here would let pip replace a CPU build with a CUDA one.
    ],
    # `pip install .[onnx]`: the onnxruntime backend and `vvhand export-onnx` (onnx: export)
    extras_require={"onnx": ["onnxruntime==1.32.0", "onnx==1.23.2"]},
    entry_points={"console_scripts": ["vvhand = vvhand_core.cli:main"]},
)
