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
    # 3.10 = Humble (Ubuntu 22.04); Jazzy and Kilted run 3.12. Every core dependency has
    # 3.10 wheels; only onnxruntime 1.32.0 needs >= 3.11, hence the marker in the extra.
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "scipy",
        "numba",  # the hand-model fit's compiled kernels (vvhand_core.fit.compiled)
        "pillow",
        "matplotlib",
        "tqdm",
        "pyyaml",
        "rosbags",
        "threadpoolctl",  # numpy's BLAS to one thread in the node (vvhand_core.threads)
        # torch: install the build for your machine first (see README); any range
        # here would let pip replace a CPU build with a CUDA one.
    ],
    # `pip install .[onnx]`: the onnxruntime backend and `vvhand export-onnx` (onnx: export).
    # onnxruntime 1.23.2 is the newest with Python 3.10 wheels (Humble); docs/results.md has
    # the tests it passed. `.[test]`: what the suite needs beyond the run-time dependencies.
    extras_require={
        "onnx": ['onnxruntime==1.32.0; python_version >= "3.11"',
                 'onnxruntime==1.23.2; python_version < "3.11"', "onnx==1.23.2"],
        "test": ["pytest", "pytest-timeout", "ruff"],
    },
    entry_points={"console_scripts": ["vvhand = vvhand_core.cli:main"]},
)
