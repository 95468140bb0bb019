"""videotag: video classification on YouTube-8M-style features, TF2 / Keras 3."""

from setuptools import find_packages, setup

setup(
    name="videotag",
    version="0.1.0",
    description=(
        "Video classification model zoo for YouTube-8M-style data: NeXtVLAD and more, "
        "exact YT8M metrics, TF Serving export"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["videotag", "videotag.*"]),
    # read at run time through importlib.resources: the configs and the demo vocabulary
    package_data={"videotag": ["configs/*.yaml", "data/*.csv"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",  # the CPU build is enough for the tests
        # the releases the test suite passes with: tests/test_keras_hooks.py checks
        # the one private Keras hook used (the optimizer's _all_reduce_sum_gradients);
        # before 3.14 FGM cannot cut a model with titles (tests/test_fgm.py)
        "keras>=3.14,<3.16",
        "numpy>=1.26",
        "absl-py>=2.1",  # flags of the tools/ CLIs
        "pyyaml>=6.0",  # configs
        "matplotlib>=3.8",  # evaluation report plots (precision-recall curve, AP histogram)
        "av>=12",  # decoding raw videos (mp4, mkv, webm) for feature extraction
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-timeout>=2.3"],
    },
)
