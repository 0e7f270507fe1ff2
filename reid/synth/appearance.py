"""What one synthetic identity looks like, and how a population of them is drawn.

ReID on the synthetic world is only a real problem if colours alone do not separate everyone:
clothing is drawn from realistic palettes (mostly dark and neutral, some saturated), and a share
of identities are *twins*: a copy of an earlier identity with exactly one salient detail changed
(bag, hat, top pattern, shoes, hair, sleeves, bottom colour). ``difficulty`` pushes both knobs.

Colours are BGR tuples (OpenCV order) everywhere in Python; :meth:`Appearance.to_dict` writes
them as ``#rrggbb`` hex strings (RGB, the web convention) so JSON and CSV stay readable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BAGS",
    "BOTTOM_KINDS",
    "BOTTOM_PATTERNS",
    "HAIR_STYLES",
    "HATS",
    "TOP_KINDS",
    "TOP_PATTERNS",
    "TWIN_DETAILS",
    "Appearance",
    "color_name",
    "sample_appearances",
]

BGR = tuple[int, int, int]

HAIR_STYLES = ("short", "long", "bald", "ponytail", "curly")
TOP_KINDS = ("tshirt", "longsleeve", "jacket", "hoodie")
TOP_PATTERNS = ("solid", "hstripes", "vstripes", "checks", "dots", "print")
BOTTOM_KINDS = ("trousers", "shorts", "skirt", "jeans")
BOTTOM_PATTERNS = ("solid", "denim", "checks")
BAGS = ("none", "backpack", "shoulder_bag", "handbag")
HATS = ("none", "cap", "beanie")
TWIN_DETAILS = (
    "bag",
    "hat",
    "top_pattern",
    "shoe_color",
    "hair_style",
    "hair_color",
    "sleeves",
    "bottom_color",
)
"""The one detail a twin changes, as recorded in :attr:`Appearance.twin_detail`."""


def _rgb(r: int, g: int, b: int) -> BGR:
    """Palettes are written in RGB (how people read colours) and stored in BGR (OpenCV)."""
    return (b, g, r)


# Neutral clothing: what most people wear. The dark ones get extra weight with difficulty.
_NEUTRALS: dict[str, tuple[BGR, float]] = {
    "black": (_rgb(22, 22, 24), 3.0),
    "charcoal": (_rgb(52, 52, 56), 2.0),
    "dark grey": (_rgb(82, 82, 86), 1.5),
    "grey": (_rgb(128, 128, 130), 1.5),
    "light grey": (_rgb(180, 180, 182), 1.0),
    "white": (_rgb(232, 232, 228), 2.0),
    "cream": (_rgb(232, 222, 196), 0.6),
    "beige": (_rgb(198, 178, 142), 1.0),
    "khaki": (_rgb(166, 148, 104), 0.8),
    "brown": (_rgb(108, 74, 50), 0.8),
    "dark brown": (_rgb(68, 47, 34), 0.5),
    "navy": (_rgb(30, 40, 76), 2.5),
    "olive": (_rgb(92, 98, 54), 0.8),
    "dark green": (_rgb(30, 68, 44), 0.6),
    "burgundy": (_rgb(108, 26, 40), 0.7),
}
_DARK = frozenset({"black", "charcoal", "dark grey", "navy", "dark brown"})
# Saturated colours: the minority that make some people easy to find.
_SATURATED: dict[str, tuple[BGR, float]] = {
    "red": (_rgb(188, 30, 36), 1.2),
    "orange": (_rgb(228, 118, 32), 0.6),
    "yellow": (_rgb(234, 198, 52), 0.6),
    "mustard": (_rgb(196, 156, 40), 0.5),
    "green": (_rgb(50, 138, 70), 0.8),
    "teal": (_rgb(22, 128, 128), 0.6),
    "sky blue": (_rgb(112, 170, 220), 0.9),
    "royal blue": (_rgb(40, 78, 178), 1.0),
    "purple": (_rgb(98, 55, 138), 0.6),
    "pink": (_rgb(228, 140, 168), 0.7),
}
_DENIM: dict[str, tuple[BGR, float]] = {
    "light blue": (_rgb(128, 158, 194), 1.0),
    "blue": (_rgb(68, 98, 148), 2.0),
    "dark blue": (_rgb(38, 52, 88), 1.8),
    "black denim": (_rgb(36, 36, 42), 1.0),
    "grey denim": (_rgb(96, 100, 110), 0.5),
}
_SKIN: tuple[BGR, ...] = (
    _rgb(246, 214, 190),
    _rgb(236, 192, 164),
    _rgb(224, 172, 138),
    _rgb(204, 146, 110),
    _rgb(176, 118, 84),
    _rgb(140, 92, 64),
    _rgb(104, 68, 48),
    _rgb(74, 50, 36),
)
"""Realistic skin tones, light to dark."""
_HAIR: dict[str, tuple[BGR, float]] = {
    "black": (_rgb(24, 20, 18), 3.0),
    "dark brown": (_rgb(54, 38, 28), 3.0),
    "brown": (_rgb(94, 64, 42), 2.0),
    "light brown": (_rgb(140, 102, 66), 1.0),
    "blonde": (_rgb(204, 170, 112), 1.0),
    "auburn": (_rgb(128, 58, 34), 0.5),
    "grey": (_rgb(150, 148, 145), 0.6),
    "white": (_rgb(216, 212, 204), 0.3),
}
_SHOES: dict[str, tuple[BGR, float]] = {
    "black": (_rgb(24, 24, 26), 3.5),
    "white": (_rgb(236, 236, 232), 2.5),
    "dark brown": (_rgb(70, 46, 30), 1.2),
    "grey": (_rgb(120, 120, 124), 1.2),
    "navy": (_rgb(32, 42, 78), 0.6),
    "beige": (_rgb(200, 180, 146), 0.5),
    "red": (_rgb(180, 34, 38), 0.5),
}
_BAGS_COL: dict[str, tuple[BGR, float]] = {
    "black": (_rgb(24, 24, 26), 4.0),
    "dark grey": (_rgb(70, 70, 74), 1.5),
    "navy": (_rgb(30, 40, 76), 1.2),
    "brown": (_rgb(110, 72, 44), 1.2),
    "tan": (_rgb(180, 140, 92), 0.8),
    "olive": (_rgb(92, 98, 54), 0.6),
    "red": (_rgb(176, 32, 38), 0.5),
    "royal blue": (_rgb(40, 78, 178), 0.5),
    "pink": (_rgb(226, 140, 168), 0.3),
    "yellow": (_rgb(232, 196, 52), 0.3),
}
_ALL_NAMED: dict[str, BGR] = {
    **{k: v[0] for k, v in _HAIR.items()},
    **{k: v[0] for k, v in _BAGS_COL.items()},
    **{k: v[0] for k, v in _SHOES.items()},
    **{k: v[0] for k, v in _DENIM.items()},
    **{k: v[0] for k, v in _SATURATED.items()},
    **{k: v[0] for k, v in _NEUTRALS.items()},
}
_COLOR_FIELDS = (
    "skin",
    "hair_color",
    "top_color",
    "top_color2",
    "bottom_color",
    "shoe_color",
    "bag_color",
    "hat_color",
)


def color_name(bgr: BGR) -> str:
    """The nearest named palette colour, so descriptions read like a witness statement."""
    b, g, r = bgr
    best, best_d = "grey", 1e9
    for name, (nb, ng, nr) in _ALL_NAMED.items():
        d = (nb - b) ** 2 + (ng - g) ** 2 + (nr - r) ** 2
        if d < best_d:
            best, best_d = name, d
    return best


@dataclass(frozen=True)
class Appearance:
    """Everything that fixes how one identity looks; the renderer adds only pose and light."""

    height_m: float = 1.72
    build: float = 1.0  # width factor, 0.85 (slim) .. 1.25 (broad)
    body_shape: float = 0.3  # 0 = broad shoulders/narrow hips .. 1 = narrow shoulders/wide hips
    skin: BGR = _SKIN[2]
    hair_color: BGR = _HAIR["dark brown"][0]
    hair_style: str = "short"
    top_kind: str = "tshirt"
    top_color: BGR = _NEUTRALS["grey"][0]
    top_color2: BGR = _NEUTRALS["white"][0]  # inner shirt of a jacket, or the pattern's colour
    top_pattern: str = "solid"
    bottom_kind: str = "jeans"
    bottom_color: BGR = _DENIM["blue"][0]
    bottom_pattern: str = "denim"
    shoe_color: BGR = _SHOES["black"][0]
    bag: str = "none"
    bag_color: BGR = _BAGS_COL["black"][0]
    hat: str = "none"
    hat_color: BGR = _NEUTRALS["black"][0]
    twin_of: int = -1  # index (in the sampled list) of the identity this one copies, -1 if none
    twin_detail: str = ""  # which TWIN_DETAILS entry differs from ``twin_of``

    def __post_init__(self) -> None:
        checks = {
            "hair_style": HAIR_STYLES,
            "top_kind": TOP_KINDS,
            "top_pattern": TOP_PATTERNS,
            "bottom_kind": BOTTOM_KINDS,
            "bottom_pattern": BOTTOM_PATTERNS,
            "bag": BAGS,
            "hat": HATS,
        }
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Appearance.{name}={getattr(self, name)!r}, not in {allowed}")
        if self.twin_detail and self.twin_detail not in TWIN_DETAILS:
            raise ValueError(f"Appearance.twin_detail={self.twin_detail!r}, not in {TWIN_DETAILS}")
        for name in _COLOR_FIELDS:
            c = getattr(self, name)
            ok = len(c) == 3 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255
                for v in c
            )
            if not ok:
                raise ValueError(f"Appearance.{name}={c!r} must be 3 ints in 0..255 (BGR)")
            # plain-int tuples, so equality, hashing and JSON do not depend on the caller's types
            object.__setattr__(self, name, (int(c[0]), int(c[1]), int(c[2])))
        ranges = {"height_m": (0.5, 2.6), "build": (0.5, 2.0), "body_shape": (0.0, 1.0)}
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ValueError(f"Appearance.{name}={v!r} must be in [{lo}, {hi}]")

    def look_key(self) -> tuple[Any, ...]:
        """All fields that show in pixels (the twin bookkeeping left out), to compare looks."""
        return tuple(
            getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("twin_of", "twin_detail")
        )

    def describe(self) -> str:
        """Short human text, e.g. for a contact sheet or a search-by-description demo."""
        parts = [f"{self.height_m:.2f} m"]
        hair = color_name(self.hair_color)
        if self.hair_style == "bald":
            parts.append("bald")
        else:
            parts.append(f"{self.hair_style} {hair} hair")
        pattern = {
            "solid": "",
            "hstripes": "striped ",
            "vstripes": "vertical-striped ",
            "checks": "checked ",
            "dots": "dotted ",
            "print": "printed ",
        }[self.top_pattern]
        c1, c2 = color_name(self.top_color), color_name(self.top_color2)
        kind = {
            "tshirt": "t-shirt",
            "longsleeve": "long-sleeve top",
            "jacket": f"jacket over a {c2} shirt",
            "hoodie": "hoodie",
        }[self.top_kind]
        parts.append(f"{c1} {pattern}{kind}")
        bottom = {"trousers": "trousers", "shorts": "shorts", "skirt": "skirt", "jeans": "jeans"}
        bpat = "checked " if self.bottom_pattern == "checks" else ""
        bname = color_name(self.bottom_color).replace(" denim", "")
        parts.append(f"{bname} {bpat}{bottom[self.bottom_kind]}")
        parts.append(f"{color_name(self.shoe_color)} shoes")
        if self.hat != "none":
            parts.append(f"{color_name(self.hat_color)} {self.hat}")
        if self.bag != "none":
            parts.append(f"{color_name(self.bag_color)} {self.bag.replace('_', ' ')}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (colours as ``#rrggbb``, RGB order), for JSON and CSV rows."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in _COLOR_FIELDS:
                b, g, r = v
                v = f"#{r:02x}{g:02x}{b:02x}"
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Appearance:
        """Inverse of :meth:`to_dict` (also accepts BGR lists), so ground truth reloads exactly."""
        kw: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                continue
            if k in _COLOR_FIELDS:
                if isinstance(v, str):
                    s = v.lstrip("#")
                    v = (int(s[4:6], 16), int(s[2:4], 16), int(s[0:2], 16))
                else:
                    v = tuple(int(x) for x in v)
            elif k in ("height_m", "build", "body_shape"):
                v = float(v)
            elif k == "twin_of":
                v = int(v)
            kw[k] = v
        return cls(**kw)


# --------------------------------------------------------------------------------------------
# Sampling


def _pick(rng: np.random.Generator, options: dict[str, tuple[BGR, float]]) -> tuple[str, BGR]:
    names = list(options)
    w = np.array([options[k][1] for k in names], dtype=np.float64)
    i = int(rng.choice(len(names), p=w / w.sum()))
    return names[i], options[names[i]][0]


def _choice(rng: np.random.Generator, items: tuple[str, ...], weights: tuple[float, ...]) -> str:
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _jitter(rng: np.random.Generator, c: BGR, amount: int) -> BGR:
    """Small per-identity shade variation: same named colour, not the same pixel value."""
    d = rng.integers(-amount, amount + 1, size=3)
    b, g, r = (int(np.clip(c[i] + d[i], 0, 255)) for i in range(3))
    return (b, g, r)


def _dist(a: BGR, b: BGR) -> float:
    return float(np.sqrt(sum((int(x) - int(y)) ** 2 for x, y in zip(a, b, strict=True))))


def _cloth_palette(difficulty: float, sat_share: float) -> dict[str, tuple[BGR, float]]:
    """Neutral + saturated clothing weights; difficulty moves mass onto the dark neutrals."""
    neu = {
        k: (c, w * (1.0 + 2.0 * difficulty if k in _DARK else 1.0))
        for k, (c, w) in _NEUTRALS.items()
    }
    nsum = sum(w for _, w in neu.values())
    ssum = sum(w for _, w in _SATURATED.values())
    out = {k: (c, (1.0 - sat_share) * w / nsum) for k, (c, w) in neu.items()}
    out.update({k: (c, sat_share * w / ssum) for k, (c, w) in _SATURATED.items()})
    return out


def _contrasting(
    rng: np.random.Generator, palette: dict[str, tuple[BGR, float]], c: BGR, min_dist: float
) -> BGR:
    """A second colour that stays visible next to ``c`` (stripes, inner shirt, print)."""
    far = {k: v for k, v in palette.items() if _dist(v[0], c) >= min_dist}
    return _jitter(rng, _pick(rng, far or palette)[1], 5)


def _bottom_color(rng: np.random.Generator, kind: str, difficulty: float) -> tuple[BGR, str]:
    """Bottom colour and pattern; jeans are always denim, other bottoms mostly plain."""
    if kind == "jeans":
        return _jitter(rng, _pick(rng, _DENIM)[1], 6), "denim"
    if kind in ("shorts", "skirt") and rng.random() < 0.25:
        return _jitter(rng, _pick(rng, _DENIM)[1], 6), "denim"
    pal = _cloth_palette(difficulty, 0.12 * (1.0 - difficulty) + (0.1 if kind == "skirt" else 0))
    _, c = _pick(rng, pal)
    pattern = "checks" if rng.random() < (0.12 if kind == "skirt" else 0.05) else "solid"
    return _jitter(rng, c, 6), pattern


def _sample_one(rng: np.random.Generator, difficulty: float) -> Appearance:
    """One fresh identity; the draw order is fixed so a seed always gives the same person."""
    shape = float(rng.beta(2.0, 2.0))
    femme = shape > 0.5
    height = float(np.clip(rng.normal(1.77 - 0.13 * shape, 0.075), 1.50, 1.98))
    build = float(np.clip(rng.normal(1.02 - 0.06 * shape, 0.08), 0.85, 1.25))
    skin = _jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 7)
    dark_skin = _dist(skin, (0, 0, 0)) < 190
    hair_pal = dict(_HAIR)
    if dark_skin:
        hair_pal = {
            k: (c, w * (3.0 if k in ("black", "dark brown") else 0.3))
            for k, (c, w) in _HAIR.items()
        }
    hair_color = _jitter(rng, _pick(rng, hair_pal)[1], 5)
    if femme:
        hair_style = _choice(rng, HAIR_STYLES, (0.15, 0.45, 0.01, 0.24, 0.15))
    else:
        hair_style = _choice(rng, HAIR_STYLES, (0.62, 0.05, 0.14, 0.03, 0.16))
    top_kind = _choice(rng, TOP_KINDS, (0.34, 0.26, 0.22, 0.18))
    sat = 0.38 - 0.3 * difficulty
    pal = _cloth_palette(difficulty, sat)
    top_color = _jitter(rng, _pick(rng, pal)[1], 6)
    top_pattern = _choice(rng, TOP_PATTERNS, (0.5 + 0.2 * difficulty, 0.12, 0.05, 0.1, 0.05, 0.14))
    top_color2 = _contrasting(rng, _cloth_palette(difficulty, 0.3), top_color, 110.0)
    if femme:
        bottom_kind = _choice(rng, BOTTOM_KINDS, (0.25, 0.12, 0.28, 0.35))
    else:
        bottom_kind = _choice(rng, BOTTOM_KINDS, (0.42, 0.14, 0.0, 0.44))
    bottom_color, bottom_pattern = _bottom_color(rng, bottom_kind, difficulty)
    shoe_color = _jitter(rng, _pick(rng, _SHOES)[1], 5)
    bag_w = (0.45, 0.26, 0.17, 0.12) if femme else (0.5, 0.3, 0.17, 0.03)
    bag = _choice(rng, BAGS, bag_w)
    bag_color = _jitter(rng, _pick(rng, _BAGS_COL)[1], 5)
    hat = _choice(rng, HATS, (0.76, 0.14, 0.10))
    hat_color = _jitter(rng, _pick(rng, pal)[1], 5)
    return Appearance(
        height_m=round(height, 3),
        build=round(build, 3),
        body_shape=round(shape, 3),
        skin=skin,
        hair_color=hair_color,
        hair_style=hair_style,
        top_kind=top_kind,
        top_color=top_color,
        top_color2=top_color2,
        top_pattern=top_pattern,
        bottom_kind=bottom_kind,
        bottom_color=bottom_color,
        bottom_pattern=bottom_pattern,
        shoe_color=shoe_color,
        bag=bag,
        bag_color=bag_color,
        hat=hat,
        hat_color=hat_color,
    )


def _twin_options(a: Appearance, difficulty: float) -> list[tuple[str, float]]:
    """Details a twin of ``a`` may change, weighted: subtle ones get likelier with difficulty."""
    opts = [
        ("bag", 1.0),
        ("hat", 0.7),
        ("top_pattern", 1.0),
        ("shoe_color", 0.4 + 0.8 * difficulty),
        ("bottom_color", 0.8),
    ]
    if a.hat == "none":  # under a hat a new hair style or colour might not show at all
        opts.append(("hair_style", 0.6))
        if a.hair_style != "bald":
            opts.append(("hair_color", 0.3 + 0.6 * difficulty))
    if a.top_kind in ("tshirt", "longsleeve"):
        opts.append(("sleeves", 0.8))
    return opts


def _make_twin(
    rng: np.random.Generator, a: Appearance, detail: str, difficulty: float
) -> Appearance:
    """Copy ``a`` and change exactly ``detail`` to something visibly different."""
    if detail == "bag":
        if a.bag == "none":
            bag = _choice(rng, BAGS[1:], (0.5, 0.3, 0.2))
            return dataclasses.replace(
                a, bag=bag, bag_color=_jitter(rng, _pick(rng, _BAGS_COL)[1], 5)
            )
        other = [b for b in BAGS if b != a.bag]
        return dataclasses.replace(a, bag=other[int(rng.integers(len(other)))])
    if detail == "hat":
        if a.hat == "none":
            pal = _cloth_palette(difficulty, 0.3)
            return dataclasses.replace(
                a,
                hat=_choice(rng, ("cap", "beanie"), (0.55, 0.45)),
                hat_color=_jitter(rng, _pick(rng, pal)[1], 5),
            )
        return dataclasses.replace(a, hat="none")
    if detail == "top_pattern":
        other = tuple(p for p in TOP_PATTERNS if p != a.top_pattern)
        w = tuple(2.0 if p == "solid" else 1.0 for p in other)
        return dataclasses.replace(a, top_pattern=_choice(rng, other, w))
    if detail == "shoe_color":
        far = {k: v for k, v in _SHOES.items() if _dist(v[0], a.shoe_color) >= 70}
        return dataclasses.replace(a, shoe_color=_jitter(rng, _pick(rng, far)[1], 5))
    if detail == "hair_color":
        far = {k: v for k, v in _HAIR.items() if _dist(v[0], a.hair_color) >= 60}
        return dataclasses.replace(a, hair_color=_jitter(rng, _pick(rng, far)[1], 5))
    if detail == "hair_style":
        other = tuple(s for s in HAIR_STYLES if s != a.hair_style)
        return dataclasses.replace(a, hair_style=_choice(rng, other, (1.0,) * len(other)))
    if detail == "sleeves":
        kind = "longsleeve" if a.top_kind == "tshirt" else "tshirt"
        return dataclasses.replace(a, top_kind=kind)
    if detail == "bottom_color":
        pal = _DENIM if a.bottom_pattern == "denim" else _cloth_palette(difficulty, 0.1)
        far = {k: v for k, v in pal.items() if _dist(v[0], a.bottom_color) >= 70}
        return dataclasses.replace(a, bottom_color=_jitter(rng, _pick(rng, far or pal)[1], 5))
    raise ValueError(f"unknown twin detail {detail!r}")


def sample_appearances(
    n: int,
    rng: np.random.Generator,
    *,
    hard_negative_frac: float = 0.3,
    difficulty: float = 0.5,
) -> list[Appearance]:
    """Draw ``n`` identities; about ``hard_negative_frac`` of them are one-detail twins.

    The twin share is ``hard_negative_frac * (0.8 + 0.4 * difficulty)`` (so exactly
    ``hard_negative_frac`` at the default difficulty 0.5), at most ``n - 1``. Each twin copies
    an earlier non-twin identity (``twin_of`` is its index in the returned list) and changes
    exactly one :data:`TWIN_DETAILS` entry (``twin_detail``). Every returned look is distinct;
    if no new one-detail variant can be found, that slot gets a fresh identity instead.
    Deterministic for a given ``rng`` state.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"sample_appearances: n must be an int >= 1, got {n!r}")
    for name, v in (("hard_negative_frac", hard_negative_frac), ("difficulty", difficulty)):
        if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
            raise ValueError(f"sample_appearances: {name} must be in [0, 1], got {v!r}")
    n = int(n)
    frac = min(1.0, float(hard_negative_frac) * (0.8 + 0.4 * float(difficulty)))
    n_twins = min(n - 1, round(n * frac))
    twin_slots = set()
    if n_twins > 0:
        twin_slots = {int(i) for i in rng.choice(np.arange(1, n), size=n_twins, replace=False)}
    out: list[Appearance] = []
    seen: set[tuple[Any, ...]] = set()
    originals: list[int] = []
    for i in range(n):
        app: Appearance | None = None
        if i in twin_slots:
            for _ in range(24):
                j = originals[int(rng.integers(len(originals)))]
                opts = _twin_options(out[j], difficulty)
                detail = _choice(rng, tuple(o[0] for o in opts), tuple(o[1] for o in opts))
                cand = _make_twin(rng, out[j], detail, difficulty)
                if cand.look_key() not in seen:
                    app = dataclasses.replace(cand, twin_of=j, twin_detail=detail)
                    break
        if app is None:
            app = _sample_one(rng, difficulty)
            while app.look_key() in seen:  # practically never: heights are continuous
                app = _sample_one(rng, difficulty)
            originals.append(i)
        seen.add(app.look_key())
        out.append(app)
    return out
