"""Regenerate the example files: ``python examples/make_examples.py``.

- ``astronaut.jpg``: scikit-image's ``astronaut()`` sample (NASA photo of Eileen Collins, public domain);
- ``grace_hopper.jpg``: matplotlib's ``grace_hopper.jpg`` sample (U.S. Navy photo, public domain), copied as is;
- ``driving_talk.mp4``: a 3 s, 320x320, 25 fps talking-head clip rendered here from the astronaut
  picture: scripted head motion (roll, nod, drift), mouth opening in time with a synthetic
  speech-like audio track (AAC), and two blinks. Mouth and eyes are placed with MediaPipe face-mesh
  landmarks; the motion is plain image warping (no learned model), so the clip is ours to publish.

Deterministic: the same package versions give the same frames.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import wave
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FPS = 25
SECONDS = 3.0
SIZE = 320
AUDIO_RATE = 16000
SEED = 7

# MediaPipe face-mesh indices
LIP_CORNERS = (78, 308)  # inner corners
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
CHIN = 152
EYES = ((33, 133, 159, 145), (362, 263, 386, 374))  # corner, corner, upper lid, lower lid


# ------------------------------------------------------------------------------------------ script


def speech_envelope(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Syllable envelope in [0, 1] at times ``t``: bursts of 0.14-0.3 s with a pause in the middle."""
    env = np.zeros_like(t)
    start = 0.25
    while start < SECONDS - 0.3:
        if 1.35 < start < 1.75:  # a breath between two phrases
            start = 1.8
            continue
        length = rng.uniform(0.14, 0.3)
        amp = rng.uniform(0.55, 1.0)
        inside = (t >= start) & (t < start + length)
        env[inside] = np.maximum(env[inside], amp * np.sin(np.pi * (t[inside] - start) / length) ** 1.5)
        start += length + rng.uniform(0.02, 0.09)
    return env


def blink_closure(t: np.ndarray) -> np.ndarray:
    """Eyelid closure in [0, 1]: blinks of 0.22 s at 0.9 s and 2.35 s."""
    out = np.zeros_like(t)
    for at in (0.9, 2.35):
        phase = (t - at) / 0.22
        inside = (phase >= 0) & (phase <= 1)
        out[inside] = np.sin(np.pi * phase[inside])
    return out


def speech_audio(rng: np.random.Generator) -> np.ndarray:
    """Mono float32 speech-like signal: a voiced harmonic source through moving formants, x envelope."""
    t = np.arange(int(SECONDS * AUDIO_RATE)) / AUDIO_RATE
    env = speech_envelope(t, np.random.default_rng(SEED))
    f0 = 135.0 + 18.0 * np.sin(2 * np.pi * 0.7 * t) + 8.0 * env
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    f1 = 450.0 + 350.0 * env  # an open mouth raises the first formant
    f2 = 1400.0 + 400.0 * np.sin(2 * np.pi * 2.3 * t)
    voice = np.zeros_like(t)
    for k in range(1, 30):
        fk = k * f0
        gain = (np.exp(-((fk - f1) / 160.0) ** 2) + 0.6 * np.exp(-((fk - f2) / 220.0) ** 2) + 0.05) / k ** 0.6
        voice += gain * np.sin(k * phase)
    noise = rng.standard_normal(len(t)) * 0.02 * (env > 0.05)
    signal = (voice * env + noise).astype(np.float32)
    return signal / (np.abs(signal).max() + 1e-9) * 0.7


def write_wav(path: Path, signal: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())


# ------------------------------------------------------------------------------------------ warps


def open_mouth(image: np.ndarray, lm: np.ndarray, opening: float) -> np.ndarray:
    """Drop the jaw by ``opening`` pixels below the mouth line and paint the mouth's inside dark."""
    if opening < 0.3:
        return image
    h, w = image.shape[:2]
    left, right = lm[LIP_CORNERS[0]], lm[LIP_CORNERS[1]]
    mx = (left[0] + right[0]) / 2
    my = (lm[UPPER_LIP_INNER][1] + lm[LOWER_LIP_INNER][1]) / 2
    half_width = abs(right[0] - left[0]) / 2
    chin_y = lm[CHIN][1]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    across = np.exp(-(((xs - mx) / (1.6 * half_width)) ** 2))
    below = np.clip((ys - my + 2) / 4, 0, 1)  # 0 above the mouth line, 1 below
    fade = np.clip(1 - (ys - chin_y) / (0.6 * (chin_y - my)), 0, 1)  # back to 0 under the chin
    dy = opening * across * below * fade
    moved = cv2.remap(image, xs, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # the gap between the lips: a dark, slightly red ellipse, soft-edged
    mouth = np.zeros((h, w), np.float32)
    cv2.ellipse(mouth, (int(round(mx)), int(round(my + opening / 2))),
                (int(round(half_width * 0.85)), max(1, int(round(opening / 2)))), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    mouth = cv2.GaussianBlur(mouth, (0, 0), 1.2)[..., None]
    inside = np.array([70, 22, 28], np.float32)
    return (moved.astype(np.float32) * (1 - mouth) + inside * mouth).astype(np.uint8)


def close_eyes(image: np.ndarray, lm: np.ndarray, closure: float) -> np.ndarray:
    """Pull the lids of both eyes towards the eye's midline (closure 1 = shut)."""
    if closure < 0.02:
        return image
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    src_y = ys.copy()
    for c0, c1, top, bottom in EYES:
        cx = (lm[c0][0] + lm[c1][0]) / 2
        cy = (lm[top][1] + lm[bottom][1]) / 2
        half_w = abs(lm[c1][0] - lm[c0][0]) / 2 * 1.25
        opening = max(2.0, abs(lm[bottom][1] - lm[top][1]) / 2 + 1.5)
        reach = 3.0 * opening
        window = np.clip(1 - ((xs - cx) / half_w) ** 2, 0, 1)
        k = 1 - 0.92 * closure * window  # display/source ratio inside the eye
        d = ys - cy
        ad = np.abs(d)
        inner = ad < opening * k
        s = np.where(inner, ad / k, opening + (ad - opening * k) * (reach - opening) / (reach - opening * k))
        s = np.where(ad < reach, s, ad)
        region = (window > 0) & (ad < reach)
        src_y = np.where(region, cy + np.sign(d) * s, src_y)
    return cv2.remap(image, xs, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def head_transform(t: float, center: tuple[float, float]) -> np.ndarray:
    """Affine 2x3: a little roll, nod (vertical bob), drift and zoom over time."""
    angle = 4.0 * np.sin(2 * np.pi * t / SECONDS)
    scale = 1.0 + 0.025 * np.sin(2 * np.pi * t / 1.9)
    m = cv2.getRotationMatrix2D(center, angle, scale)
    m[0, 2] += 5.0 * np.sin(2 * np.pi * t / 2.6)
    m[1, 2] += 3.5 * np.sin(2 * np.pi * t / 0.75) * 0.6
    return m


# ------------------------------------------------------------------------------------------ files


def make_driving(out: Path) -> None:
    from skimage.data import astronaut

    from talking_head.face import still_landmarks
    from talking_head.video import VideoWriter

    image = astronaut()
    lm = still_landmarks(image)
    if lm is None:
        raise RuntimeError("no face found in the astronaut picture")
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.05 * (y1 - y0)
    side = 1.9 * max(x1 - x0, y1 - y0)
    crop = np.float32([[SIZE / side, 0, SIZE / 2 - cx * SIZE / side], [0, SIZE / side, SIZE / 2 - cy * SIZE / side]])

    rng = np.random.default_rng(SEED)
    audio = speech_audio(rng)
    n = int(round(SECONDS * FPS))
    t = np.arange(n) / FPS
    mouth = speech_envelope(t + 0.02, np.random.default_rng(SEED))  # lips lead the sound a little
    blinks = blink_closure(t)
    mouth_px = 0.2 * (lm[CHIN][1] - lm[UPPER_LIP_INNER][1])

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, audio)
        with VideoWriter(out, FPS, audio_from=wav) as writer:
            for i in range(n):
                frame = open_mouth(image, lm, mouth[i] * mouth_px)
                frame = close_eyes(frame, lm, blinks[i])
                head = np.vstack([head_transform(t[i], (float(cx), float(cy))), [0, 0, 1]])
                full = crop @ head
                writer.write(cv2.warpAffine(frame, full, (SIZE, SIZE), flags=cv2.INTER_AREA,
                                            borderMode=cv2.BORDER_REFLECT))


def make_sources() -> None:
    import matplotlib.cbook
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(HERE / "astronaut.jpg", quality=90)
    shutil.copyfile(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), HERE / "grace_hopper.jpg")


def main() -> int:
    make_sources()
    make_driving(HERE / "driving_talk.mp4")
    for p in sorted(HERE.iterdir()):
        if p.suffix in (".jpg", ".mp4"):
            print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
