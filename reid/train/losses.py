"""The bag-of-tricks objective: label-smoothed CE (after BNNeck) + batch-hard triplet (before).

Cross-entropy and triplet are torchreid's own (``CrossEntropyLoss(label_smooth=True)``,
``TripletLoss(margin=0.3)``). Centre loss is written here because torchreid 0.2.5 ships none.
:class:`RelationalDistill` keeps the student's view of *which crops look alike* close to a
frozen ImageNet teacher's (the only real-image knowledge on hand), written here because neither
torchreid nor torchvision ships a relational distillation loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reid.models.torchreid_zoo import CrossEntropyLoss, TripletLoss

__all__ = ["CenterLoss", "ImagenetTeacher", "ReidLoss", "RelationalDistill", "relational_loss"]


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


def relational_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the two batches' pairwise cosine-similarity matrices.

    Matches relations, not the features themselves (cf. Tung & Mori, "Similarity-Preserving
    Knowledge Distillation", ICCV 2019): the student's feature space may differ from the
    teacher's (its BNNeck and identity head need their own), but crops that look alike to an
    ImageNet network should stay alike. Zero when the batches are equal up to per-row scale.
    """
    if student.shape[0] != teacher.shape[0] or student.ndim != 2 or teacher.ndim != 2:
        raise ValueError(f"batches of (n, d) features needed, got {student.shape}/{teacher.shape}")
    s = F.normalize(student.float(), dim=1)
    t = F.normalize(teacher.float(), dim=1)
    return (s @ s.T - t @ t.T).pow(2).mean()


class ImagenetTeacher(nn.Module):
    """A frozen backbone whose pooled features the student is distilled towards.

    Always in eval mode (its BatchNorm statistics are ImageNet's) and never trained: its
    parameters do not require gradients and its forward runs under ``torch.no_grad``.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> ImagenetTeacher:
        super().train(False)  # stays in eval mode whatever the caller asks
        return self

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.backbone.global_avgpool(self.backbone.featuremaps(x)).flatten(1)


class RelationalDistill(nn.Module):
    """``weight * relational_loss(student feature, teacher(images))``."""

    def __init__(self, teacher: nn.Module, weight: float) -> None:
        super().__init__()
        if not weight > 0:
            raise ValueError(f"distillation weight must be > 0, got {weight}")
        self.teacher = teacher
        self.weight = float(weight)

    def forward(self, images: Tensor, student_feat: Tensor) -> tuple[Tensor, Tensor]:
        """``(weighted loss, unweighted loss)``; no gradient reaches the teacher."""
        target = self.teacher(images).detach()
        raw = relational_loss(student_feat, target)
        return self.weight * raw, raw.detach()
