"""The embedding stage: person crops in, unit-length ReID vectors out (ONNX Runtime, no torch).

``onnx`` holds the embedder (``OnnxEmbedder``, ``create_embedder``, preprocessing) and
``model_file`` what an ONNX file says about itself (its input contract and its identity).
"""

from reid.embed.model_file import InputContract, model_identity
from reid.embed.onnx import (
    DEFAULT_MODEL,
    SOURCE_MODEL,
    VALID_FLAG,
    OnnxEmbedder,
    create_embedder,
    default_model,
    preprocess_crops,
    read_image,
    source_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "SOURCE_MODEL",
    "VALID_FLAG",
    "InputContract",
    "OnnxEmbedder",
    "create_embedder",
    "default_model",
    "model_identity",
    "preprocess_crops",
    "read_image",
    "source_model",
]
