"""The bag-of-tricks objective: label-smoothed CE (after BNNeck) + batch-hard triplet (before).

Cross-entropy and triplet are torchreid's own (``CrossEntropyLoss(label_smooth=True)``,
``TripletLoss(margin=0.3)``). Centre loss is written here because torchreid 0.2.5 ships none.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reid.models.torchreid_zoo import CrossEntropyLoss, TripletLoss

__all__ = ["CenterLoss", "ReidLoss"]


class CenterLoss(nn.Module):
    """Wen et al. 2016: mean squared distance of each feature to its identity's centre.

    The centres are learned by their own SGD (lr 0.5 in the recipe), see ``ReidLoss``.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, feat: Tensor, labels: Tensor) -> Tensor:
        return (feat - self.centers[labels]).pow(2).sum(dim=1).clamp(1e-12, 1e12).mean()


class ReidLoss(nn.Module):
    """``ce(logits) + triplet(feat) [+ w * center(feat)]``; also returns the parts for logging."""

    def __init__(
        self,
        num_classes: int,
        dim: int,
        *,
        margin: float = 0.3,
        label_smooth: bool = True,
        center_weight: float = 0.0,
        use_gpu: bool = False,
    ) -> None:
        super().__init__()
        self.ce = CrossEntropyLoss(num_classes, label_smooth=label_smooth, use_gpu=use_gpu)
        self.triplet = TripletLoss(margin=margin)
        self.center_weight = center_weight
        self.center = CenterLoss(num_classes, dim) if center_weight > 0 else None

    def forward(self, logits: Tensor, feat: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        ce = self.ce(logits, labels)
        tri = self.triplet(feat.float(), labels)
        total = ce + tri
        parts = {"ce": ce.detach(), "triplet": tri.detach()}
        if self.center is not None:
            cen = self.center(feat.float(), labels)
            total = total + self.center_weight * cen
            parts["center"] = cen.detach()
        return total, parts

    def center_optimizer(self, lr: float = 0.5) -> torch.optim.Optimizer | None:
        """SGD for the centres (the recipe's lr 0.5), or None without centre loss."""
        if self.center is None:
            return None
        return torch.optim.SGD(self.center.parameters(), lr=lr)

    def unscale_center_grads(self) -> None:
        """Undo the loss weight on the centres' gradient, so they move at the SGD's own lr."""
        if self.center is not None and self.center.centers.grad is not None:
            self.center.centers.grad.mul_(1.0 / self.center_weight)
