"""Size and cost of registered models, computed on the meta device (no memory, no time).

``FlopCounterMode`` counts the multiply-adds of convolutions and matrix products (BatchNorm,
activations and pooling are left out, as in the papers' "Mult-Adds"); on the meta device it
needs only shapes, so listing every model costs well under a second each.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from reid.models.factory import create_model
from reid.models.registry import model_info

__all__ = ["model_stats"]


def model_stats(name: str, input_size: tuple[int, int] | None = None) -> dict:
    """``{name, input_size, embed_dim, params_m, gmacs}`` of one image at ``input_size``.

    Parameters exclude the identity classifier (its size depends on the training set).
    """
    info = model_info(name)
    h, w = input_size or info.input_size
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.empty(1, 3, h, w)
    params = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("classifier."))
    with FlopCounterMode(display=False) as counter:
        model(x)
    return {
        "name": name,
        "input_size": [h, w],
        "embed_dim": info.embed_dim,
        "params_m": round(params / 1e6, 3),
        "gmacs": round(counter.get_total_flops() / 2e9, 4),
    }
