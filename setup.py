import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Pins are chosen so that MindSpore 2.10 imports silently: MindSpore's CPU wheel is built against
# NumPy 1.x and prints a traceback on the first op under NumPy 2.x, and pyarrow 25.0.1 is the newest
# pyarrow that still accepts NumPy 1.x (datasets 5.2 needs pyarrow >= 24).
INSTALL_REQUIRES = [
    "mindspore==2.10.0",
    "numpy==1.26.4",
    "pyarrow==25.0.1",
    "pandas==3.0.6",
    "transformers==5.23.0",
    "tokenizers==0.23.3",
    "datasets==5.2.0",
    "safetensors==0.8.0",
    "huggingface_hub==2.4.0",
    "tqdm>=4.66",
]

EXTRAS = {
    # torch is only for parity tests/benchmarks against Hugging Face PyTorch. Install `torch==2.13.0`
    # first and alone (CPU build); a plain `torch` requirement would pull several GB of CUDA packages.
    # tensorboardX is the writer behind `report_to="tensorboard"` (torch.utils.tensorboard would need torch).
    # optuna is the backend of `Trainer.hyperparameter_search` (imported only when it is called).
    # peft (imports torch) is only for tests: adapters saved by mindone_ft.peft must load in the real PEFT and back.
    "tensorboard": ["tensorboardX==2.6.5"],
    "optuna": ["optuna==5.0.0"],
    "test": ["pytest>=8", "accelerate==1.15.0", "torch==2.13.0", "tensorboardX==2.6.5", "optuna==5.0.0", "peft==0.21.2"],
    "dev": ["pytest>=8", "accelerate==1.15.0", "torch==2.13.0", "tensorboardX==2.6.5", "optuna==5.0.0", "peft==0.21.2", "ruff"],
}

setup(
    name="mindone_ft",
    version="0.1.0",
    description="Fine-tune Hugging Face Transformers models on MindSpore with the Transformers API.",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mindone_ft", "mindone_ft.*"]),
    # The CPU kernels' C++ source is compiled on the user's machine at first use (mindone_ft/kernels/cpu.py).
    package_data={"mindone_ft.kernels": ["*.cc"]},
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
