"""The ReID models: one registry of names, torchreid backbones, BNNeck, checkpoints.

Only training, evaluation and compression import this package (it needs torch); serving runs
the exported ONNX model instead. Importing it registers every family (``osnet``, ``resnet``,
``mobilenetv2``); callers use :func:`create_model` and never a constructor.
"""

from reid.models import mobilenetv2, onnx_import, osnet, resnet  # noqa: F401  (registers the families)
from reid.models.checkpoint import load_checkpoint, save_checkpoint
from reid.models.factory import create_model
from reid.models.features import extract_features
from reid.models.info import ModelInfo
from reid.models.net import ReIDNet
from reid.models.registry import list_models, model_info, register_model
from reid.models.weights import LoadReport, load_weights

__all__ = [
    "LoadReport",
    "ModelInfo",
    "ReIDNet",
    "create_model",
    "extract_features",
    "list_models",
    "load_checkpoint",
    "load_weights",
    "model_info",
    "onnx_import",
    "register_model",
    "save_checkpoint",
]
