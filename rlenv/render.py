"""``render_mode="rgb_array"``: the episode's text drawn into a fixed-size RGB frame (core layer).

Video tools (SB3's ``VecVideoRecorder``, Gymnasium's ``RecordVideo``) and SB3's ``make_vec_env``,
which asks for ``rgb_array`` by default, need an image; text environments have only text. The
frame shows the prompt and the tokens generated so far, word-wrapped, newest lines kept when the
text outgrows the frame. Pillow (already a dependency of matplotlib) draws it with its built-in
font, so nothing is downloaded and no font file is needed.
"""

from __future__ import annotations

import textwrap
from functools import lru_cache
from typing import Any

import numpy as np

FRAME_WIDTH, FRAME_HEIGHT = 512, 160
MARGIN, FONT_SIZE, LINE_HEIGHT = 8, 12, 15
CHAR_WIDTH = 7  # a generous average advance of the built-in font at FONT_SIZE, for wrapping


@lru_cache(maxsize=1)
def _font() -> Any:  # a PIL font
    from PIL import ImageFont

    return ImageFont.load_default(size=FONT_SIZE)


def text_frame(text: str, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> np.ndarray:
    """``text`` in black on white, as a (height, width, 3) uint8 array (the ``rgb_array`` contract)."""
    from PIL import Image, ImageDraw

    columns = max(1, (width - 2 * MARGIN) // CHAR_WIDTH)
    rows = max(1, (height - 2 * MARGIN) // LINE_HEIGHT)
    lines = [wrapped for paragraph in text.splitlines() or [""]
             for wrapped in textwrap.wrap(paragraph, columns, replace_whitespace=False) or [""]]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines[-rows:]):  # the newest tokens stay in view
        draw.text((MARGIN, MARGIN + row * LINE_HEIGHT), line, fill="black", font=_font())
    return np.asarray(image, dtype=np.uint8)
