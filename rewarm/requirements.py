"""What a logged model needs wherever it is loaded: pinned packages, and the code of a network factory."""

from __future__ import annotations

import importlib
from pathlib import Path

import mlflow
import pandas as pd
import torch


def serving_code(architecture: str) -> list[str]:
    """A factory architecture's top-level package folder, copied into the logged model so it loads anywhere."""
    if ":" not in architecture:
        return []
    top = importlib.import_module(architecture.partition(":")[0].split(".")[0])
    return [str(Path(top.__file__).parent if top.__file__.endswith("__init__.py") else Path(top.__file__))]


def pip_requirements(architecture: str = "mlp") -> list[str]:
    """What serving the model needs, pinned to the versions it was trained with."""
    from importlib.metadata import version

    import numpy

    pinned = [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"pandas=={pd.__version__}",
        f"numpy=={numpy.__version__}",
    ]
    if architecture in ("mlp_periodic", "mlp_plr", "tabm"):
        pinned.append(f"rtdl_num_embeddings=={version('rtdl_num_embeddings')}")
    if architecture == "tabm":
        pinned.append(f"tabm=={version('tabm')}")
    return pinned
