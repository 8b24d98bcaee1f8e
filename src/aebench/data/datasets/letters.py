"""Letters at 8x8: the out-of-distribution companion of the embedded `digits`, needing no network.

The GWAE paper detects Omniglot characters as out-of-distribution for a model trained on
MNIST. For scikit-learn's 8x8 digits the analogue here is Latin letters drawn the way those
digits were made (UCI "optdigits"): a character is rasterised as a 32x32 binary bitmap,
size-normalised to fill the box, and every non-overlapping 4x4 block is replaced by its count
of ink pixels (0..16). Values are then scaled to 0..255 with round(v * 255 / 16), exactly as
`aebench.data.datasets.digits.load_digits_raw` scales the digits, so both datasets share the uint8
(N, 1, 8, 8) white-ink-on-black convention and the same 17 grey levels.

Glyphs come from the TrueType fonts matplotlib ships (DejaVu Sans/Serif/Mono, STIX and
Computer Modern, regular/bold/italic), so nothing is downloaded. Each image draws a letter, a
font and a random affine jitter (rotation, shear, anisotropic scale, shift) so the set has
handwriting-like variety, and strokes are grown by one bitmap pixel so that their width (and
the ink per image) is close to the pen strokes of the digits. Letters easily mistaken for digits at 8x8 (B D G I O Q S Z and
b d g i l o q s z) are left out, so that "out of distribution" means a different kind of
character rather than a digit in disguise; the label is the letter's index in `LETTERS`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from aebench.data.raw import RawDataset

LETTERS = "ACEFHJKLMNPRTUVWXYacefhjkmnprtuvwxy"
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
    "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf",
)
BITMAP = 32  # optdigits' bitmap side
BLOCK = 4  # optdigits' block side: 32 / 4 = 8 pixels per side
FILL = 28.0  # pixels the longer side of a glyph spans before jitter


@lru_cache(maxsize=None)
def _glyph(font: str, letter: str) -> tuple[np.ndarray, ...]:
    """The glyph's closed outlines, centred on the origin, longer side = FILL pixels."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font
    outline = TextPath((0, 0), letter, prop=FontProperties(fname=str(path)), size=1)
    ext = outline.get_extents()
    centre = np.array([(ext.x0 + ext.x1) / 2, (ext.y0 + ext.y1) / 2])
    scale = FILL / max(ext.width, ext.height)
    return tuple((poly - centre) * scale for poly in outline.to_polygons(closed_only=True))


def _rasterise(polygons, matrix: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """32x32 bool bitmap of the outlines mapped by p -> matrix @ p + shift, even-odd filled,
    sampled at pixel centres (row 0 at the top)."""
    from matplotlib.path import Path as MplPath

    rows, cols = np.mgrid[0:BITMAP, 0:BITMAP]
    centres = np.stack([cols.ravel() + 0.5 - BITMAP / 2, BITMAP / 2 - rows.ravel() - 0.5], axis=1)
    inside = np.zeros(BITMAP * BITMAP, dtype=np.int64)
    for poly in polygons:
        inside += MplPath(poly @ matrix.T + shift).contains_points(centres)
    return (inside % 2 == 1).reshape(BITMAP, BITMAP)


def _jitter(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random affine map: rotation +-12 deg, x-shear +-0.25, scales 0.8..1.0, shift +-1.5 px."""
    angle = math.radians(rng.uniform(-12, 12))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-0.25, 0.25)], [0.0, 1.0]])
    scale = np.diag(rng.uniform(0.8, 1.0, size=2))
    return rotation @ shear @ scale, rng.uniform(-1.5, 1.5, size=2)


def thicken(bitmaps: np.ndarray) -> np.ndarray:
    """Grow strokes by one pixel (4-neighbour dilation): printed strokes are thinner than the
    pen strokes of optdigits' writers, and the ink per image should be comparable."""
    out = bitmaps.copy()
    out[:, 1:, :] |= bitmaps[:, :-1, :]
    out[:, :-1, :] |= bitmaps[:, 1:, :]
    out[:, :, 1:] |= bitmaps[:, :, :-1]
    out[:, :, :-1] |= bitmaps[:, :, 1:]
    return out


def to_optdigits(bitmaps: np.ndarray) -> np.ndarray:
    """(N, 32, 32) bool -> (N, 1, 8, 8) uint8: ink count per 4x4 block, scaled by 255 / 16."""
    n = len(bitmaps)
    counts = bitmaps.reshape(n, BITMAP // BLOCK, BLOCK, BITMAP // BLOCK, BLOCK).sum(axis=(2, 4))
    return np.rint(counts * 255.0 / 16.0).clip(0, 255).astype(np.uint8)[:, None]


def make_letters(n: int, seed: int) -> RawDataset:
    """n letter images (N, 1, 8, 8) uint8, deterministic in (n, seed); label = index in LETTERS."""
    n = int(n)
    if n < 1:
        raise ValueError(f"make_letters: n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(LETTERS), size=n)
    font = rng.integers(0, len(FONTS), size=n)
    bitmaps = np.zeros((n, BITMAP, BITMAP), dtype=bool)
    for i in range(n):
        matrix, shift = _jitter(rng)
        bitmaps[i] = _rasterise(_glyph(FONTS[font[i]], LETTERS[label[i]]), matrix, shift)
    return RawDataset(
        x=to_optdigits(thicken(bitmaps)),
        label=label.astype(np.int64),
        factors={},
        meta={
            "source": "generated: Latin letters rendered from the fonts bundled with matplotlib",
            "seed": int(seed),
            "letters": LETTERS,
            "fonts": list(FONTS),
            "n_classes": len(LETTERS),
            "licence": "fonts: DejaVu (Bitstream Vera licence), STIX (SIL OFL), Computer Modern (BaKoMa/AMS)",
            "notes": "optdigits procedure: 32x32 binary bitmap (strokes grown by one pixel), 4x4 block ink "
                     "counts 0..16, scaled by "
                     "round(v * 255 / 16); white ink on black like the digits; letters resembling digits "
                     "(B D G I O Q S Z b d g i l o q s z) excluded",
        },
    )
