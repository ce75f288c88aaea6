"""Contact sheets: a grid of frames labelled with their frame index, the task string on top.

Used by `worldsmith data view` and the demo. Small frames (64x64) are scaled up with nearest
neighbour so single pixels stay visible; large ones are scaled down to the tile size.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
MUTED = (160, 160, 170)


def pick_frames(length: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over an episode, first and last included."""
    if length <= count:
        return list(range(length))
    return sorted({int(round(i * (length - 1) / (count - 1))) for i in range(count)})


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def _tile(img: np.ndarray, tile: int) -> Image.Image:
    h, w = img.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
    return Image.fromarray(img).resize(size, resample)


def grid(rows: list[tuple[str | None, list[tuple[np.ndarray, str]]]], title: str = "", tile: int = 128,
         label_width: int = 0) -> Image.Image:
    """Rows of (row label, [(frame, caption), ...]) under a wrapped title; returns an RGB image.

    Every cell is `tile` pixels on its long side, shaped like the first frame.
    """
    pad, cap_h = 6, 16
    font, title_font = _font(12), _font(14)
    first = next((cells[0][0] for _, cells in rows if cells), np.zeros((tile, tile, 3), np.uint8))
    fh, fw = first.shape[:2]
    cell_w, cell_h = (tile, max(1, round(tile * fh / fw))) if fw >= fh else (max(1, round(tile * fw / fh)), tile)
    cols = max((len(cells) for _, cells in rows), default=1)
    width = pad + label_width + cols * (cell_w + pad)
    title_lines = textwrap.wrap(title, width=max(20, width // 8)) if title else []
    top = pad + len(title_lines) * 18
    row_h = max(cell_h, 15 * 2) + cap_h + pad
    height = top + len(rows) * row_h + pad
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        draw.text((pad, pad + i * 18), line, fill=TEXT, font=title_font)
    for r, (label, cells) in enumerate(rows):
        y = top + r * row_h
        if label:
            for j, line in enumerate(textwrap.wrap(label, width=max(6, label_width // 7))[:6]):
                draw.text((pad, y + j * 15), line, fill=TEXT, font=font)
        for c, (img, caption) in enumerate(cells):
            x = pad + label_width + c * (cell_w + pad)
            t = _tile(img, tile).resize((cell_w, cell_h), Image.NEAREST) if img.shape[:2] != (fh, fw) else _tile(img, tile)
            sheet.paste(t, (x, y))
            draw.text((x, y + t.height + 2), caption, fill=MUTED, font=font)
    return sheet


def contact_sheet(frames: np.ndarray, indices: list[int] | None = None, task: str = "", title: str = "",
                  columns: int = 8, tile: int = 128) -> Image.Image:
    """A sheet of `frames` (T, H, W, 3) labelled with `indices` (their frame numbers in the episode)."""
    indices = list(range(len(frames))) if indices is None else list(indices)
    cells = [(f, f"frame {i}") for f, i in zip(frames, indices)]
    rows = [(None, cells[i:i + columns]) for i in range(0, len(cells), columns)]
    head = " | ".join(x for x in (title, f'task: "{task}"' if task else "") if x)
    return grid(rows, head, tile)


def save_view(out: str | os.PathLike, frames: np.ndarray, fps: float, indices: list[int] | None = None,
              task: str = "", title: str = "") -> Path:
    """Write `frames` as a contact sheet (.png/.jpg), an animation (.gif) or a video (.mp4), atomically."""
    from worldsmith.video import write_video

    out = Path(out)
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}{out.suffix}")
    if suffix in (".png", ".jpg", ".jpeg"):
        contact_sheet(frames, indices, task, title).save(tmp)
    elif suffix == ".gif":
        images = [_tile(f, max(128, max(f.shape[:2]))) for f in frames]
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    elif suffix == ".mp4":
        write_video(tmp, frames, fps)
    else:
        raise ValueError(f"{out}: unsupported output type {suffix!r} (use .png, .jpg, .gif or .mp4)")
    os.replace(tmp, out)
    return out
