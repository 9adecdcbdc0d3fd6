"""MoCoGAN-HD: a frozen StyleGAN2 makes a face from z, an LSTM walks its w through W space into a clip.

Port of ``snap-research/MoCoGAN-HD`` (evaluate.py / models.py / rnn.py). This is a *generator*, not an
``Animator``: it takes no source photo. The networks are in ``stylegan2_modules`` and
``mocoganhd_modules``; this module loads the four published files and samples clips:

- the image generator ``*.pt``: a ``torch.save`` dict whose ``g_ema`` entry is a rosinality StyleGAN2
  state dict; such files can also hold an argparse ``Namespace`` under ``args``, which is allow-listed
  (nothing else beyond tensors is accepted: ``weights_only=True``);
- the motion generator ``modelR_epoch_<N>.pth``: the bare ``RNNModule`` state dict;
- ``pca_comp.npy`` / ``pca_stdev.npy``: the PCA basis of W (read with ``allow_pickle=False``).

Sampling is seeded: the face seed draws z and the per-layer noise maps, the motion seed draws the
LSTM's per-step noise, each from its own numpy stream, so the same seeds give the same clip on the
same device, and re-rolling one keeps the other. Frames are synthesised a few at a time once the
trajectory is known, so memory stays flat in the clip's length.
"""
from __future__ import annotations

import argparse
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import CheckpointError
from talking_head.models.base import cpu_state_dict, load_strict
from talking_head.models.mocoganhd_modules import RNNModule, Trajectory
from talking_head.models.stylegan2_modules import Generator

ROLES = ("image_generator", "motion_generator", "pca_comp", "pca_stdev")
PIXELS_PER_CHUNK = 4 * 256 * 256  # frames synthesised together: 4 at 256 px, 1 at 512 and 1024


# ---------------------------------------------------------------- random draws
@dataclass
class Draws:
    """Every random number one clip needs (what the original draws with ``normal_()``)."""

    z: torch.Tensor  # (1, z_dim) content code
    eps: torch.Tensor  # (steps - 1, 1, z_dim) LSTM input noise e_1 ... e_{T-1}
    noise: list[torch.Tensor] | None  # one (1, 1, r, r) map per layer, shared by all frames; None: no noise


def _stream(seed: int, tag: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, zlib.crc32(tag.encode())])


def sample_draws(face_seed: int, motion_seed: int, steps: int, noise_shapes: list[tuple[int, int]],
                 use_noise: bool, z_dim: int = 512) -> Draws:
    """z and noise maps from ``face_seed``, the ``steps - 1`` LSTM inputs from ``motion_seed``.

    The motion stream is drawn row by row, so a longer clip with the same seeds starts with the same
    motion as a shorter one.
    """
    face = _stream(face_seed, "mocoganhd:face")
    z = face.standard_normal((1, z_dim)).astype(np.float32)
    maps = [face.standard_normal((1, 1, *shape)).astype(np.float32) for shape in noise_shapes]
    eps = _stream(motion_seed, "mocoganhd:motion").standard_normal((max(steps - 1, 0), 1, z_dim)).astype(np.float32)
    return Draws(z=torch.from_numpy(z), eps=torch.from_numpy(eps),
                 noise=[torch.from_numpy(m) for m in maps] if use_noise else None)


def interpolate(w: torch.Tensor) -> torch.Tensor:
    """``--interpolation``: (T, d) -> (2T - 1, d), midpoints (w_t + w_{t+1}) / 2 inserted."""
    if w.shape[0] < 2:
        return w
    mids = (w[:-1] + w[1:]) / 2.0
    out = torch.stack([w[:-1], mids], dim=1).reshape(-1, w.shape[1])
    return torch.cat([out, w[-1:]], dim=0)


def steps_for(frames: int, interpolation: bool) -> int:
    """LSTM steps for ``frames`` output frames (interpolation makes 2T - 1 frames of T steps)."""
    return (frames + 2) // 2 if interpolation else frames


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in about [-1, 1] -> uint8 (N, H, W, 3): trunc((clamp(x) + 1) / 2 * 255), as the original."""
    x = (images.float().clamp(-1, 1) + 1.0) / 2.0 * 255.0
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------- the generator
class MoCoGANHD:
    """A loaded MoCoGAN-HD: ``clip(...)`` yields uint8 frames, ``still(...)`` the face alone.

    Calls take turns (one lock): the studio shares one loaded model between sessions.
    """

    kind = "generator"

    def __init__(self, card: ModelCard, generator: Generator, rnn: RNNModule, device):
        self.card = card
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.rnn = rnn.to(self.device).eval()
        self.lock = threading.RLock()
        self.size = generator.size
        # frames per forward pass: 4 at 256 px (on this 2-core CPU ~1.35x the throughput of one at a time), 1 above
        self.chunk = max(1, PIXELS_PER_CHUNK // (self.size * self.size))

    # -- latents
    def draws(self, face_seed: int, motion_seed: int, steps: int, use_noise: bool = True) -> Draws:
        return sample_draws(face_seed, motion_seed, steps, self.generator.noise_shapes(), use_noise,
                            self.generator.style_dim)

    def trajectory(self, draws: Draws) -> Trajectory:
        with torch.inference_mode():
            w0 = self.generator.map(draws.z.to(self.device))
            return self.rnn(w0, draws.eps.to(self.device))

    def frame_latents(self, draws: Draws, interpolation: bool = False) -> torch.Tensor:
        """One w per output frame, (frames, z_dim)."""
        w = self.trajectory(draws).w
        return interpolate(w) if interpolation else w

    # -- pixels
    def synthesize(self, latents: torch.Tensor, noise: list[torch.Tensor] | None) -> Iterator[np.ndarray]:
        """uint8 (H, W, 3) frames for ``latents`` (N, z_dim), ``self.chunk`` frames per forward pass."""
        maps = None if noise is None else [m.to(self.device) for m in noise]
        for start in range(0, latents.shape[0], self.chunk):
            with self.lock, torch.inference_mode():
                images = self.generator.synthesize(latents[start:start + self.chunk].to(self.device), maps)
                frames = to_uint8(images)
            yield from frames

    def clip(self, face_seed: int, motion_seed: int, frames: int, interpolation: bool = False,
             use_noise: bool = True) -> Iterator[np.ndarray]:
        """The clip of ``frames`` uint8 frames for these seeds (frame 0 is ``still``)."""
        draws = self.draws(face_seed, motion_seed, steps_for(frames, interpolation), use_noise)
        latents = self.frame_latents(draws, interpolation)[:frames]
        return self.synthesize(latents, draws.noise)

    def still(self, face_seed: int, use_noise: bool = True) -> np.ndarray:
        """The generated face alone (the first frame of every clip of this face seed)."""
        return next(self.clip(face_seed, 0, 1, use_noise=use_noise))

    def close(self) -> None:
        """Nothing to release beyond the modules (kept for the Animator-like interface)."""


# ---------------------------------------------------------------- building and loading
def build_modules(options: dict) -> tuple[Generator, RNNModule]:
    g = options["generator"]
    r = options["motion"]
    generator = Generator(size=g["size"], style_dim=g.get("style_dim", 512), n_mlp=g.get("n_mlp", 8),
                          channel_multiplier=g.get("channel_multiplier", 2), lr_mlp=g.get("lr_mlp", 0.01))
    rnn = RNNModule(z_dim=g.get("style_dim", 512), h_dim=r.get("h_dim", 384), n_pca=r.get("n_pca", 384),
                    w_residual=r.get("w_residual", 0.2))
    return generator, rnn


def load_file(path: Path) -> dict:
    """``hub.load_checkpoint`` (weights_only) that also accepts the argparse ``Namespace`` training scripts
    store under ``args``: plain values, nothing executable. Any other Python object is refused."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return hub.load_checkpoint(path)


def load_image_generator(path: Path, generator: Generator, what: str) -> None:
    """The ``g_ema`` entry of a rosinality-style ``.pt`` into ``generator`` (strict)."""
    checkpoint = load_file(path)
    state = checkpoint.get("g_ema")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"'{Path(path).name}' has no 'g_ema' image-generator weights "
            f"(top-level keys: {', '.join(map(str, list(checkpoint)[:10]))}).",
            "Use the StyleGAN2 image-generator file named on the model card (a .pt with a 'g_ema' entry).")
    load_strict(generator, state, what)


def load_motion_generator(path: Path, rnn: RNNModule, what: str) -> None:
    state = load_file(path)
    if "g_ema" in state:
        raise CheckpointError(f"'{Path(path).name}' is an image generator, not a motion generator.",
                              "Put the modelR_epoch_<N>.pth file from the card's motion-generator folder there.")
    load_strict(rnn, state, what)


def load_pca_array(path: Path, shape_hint: str) -> np.ndarray:
    """A float ``.npy`` array, without unpickling anything."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused
        raise CheckpointError(f"'{path.name}' holds Python objects, not a plain array, and was refused ({exc}).",
                              f"Use the published {path.name} ({shape_hint}).") from None
    except (OSError, EOFError) as exc:
        raise CheckpointError(f"'{path.name}' is not a readable .npy file ({exc}).",
                              "Download the PCA statistics again.") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        raise CheckpointError(f"'{path.name}' is not a float array.", f"Use the published {path.name} ({shape_hint}).")
    return array.astype(np.float32, copy=False)


def load_pca(comp_path: Path, stdev_path: Path, rnn: RNNModule) -> None:
    comp = load_pca_array(comp_path, "(512, 512) float32 PCA components")
    stdev = load_pca_array(stdev_path, "(512,) float32 standard deviations")
    try:
        rnn.set_pca(torch.from_numpy(comp), torch.from_numpy(stdev))
    except ValueError as exc:
        raise CheckpointError(f"The PCA statistics do not fit the motion generator: {exc}.",
                              "pca_comp.npy and pca_stdev.npy must come from the same set as the model's files.") from None


def create(card: ModelCard, paths, device) -> MoCoGANHD:
    """Build the model of ``card``; load the four files ``paths`` (in ``ROLES`` order) when given."""
    generator, rnn = build_modules(card.options)
    if paths is not None:
        files = dict(zip(ROLES, paths))
        load_image_generator(files["image_generator"], generator, f"the StyleGAN2 image generator of '{card.name}'")
        load_motion_generator(files["motion_generator"], rnn, f"the motion generator of '{card.name}'")
        load_pca(files["pca_comp"], files["pca_stdev"], rnn)
    return MoCoGANHD(card, generator, rnn, device)


def published_checkpoints(model: MoCoGANHD, seed: int = 0) -> dict[str, object]:
    """``{filename: object}`` in the published layouts: the ``.pt`` dict (``g_ema``, ``latent_avg``, an
    ``args`` Namespace, as rosinality's training writes), the bare motion state dict, and the two
    ``.npy`` arrays (numpy arrays; the rest are ``torch.save`` objects). PCA: a random orthonormal basis."""
    names = dict(zip(ROLES, (wf.filename for wf in model.card.files)))
    g = cpu_state_dict(model.generator)
    with torch.inference_mode():
        latent_avg = model.generator.map(torch.randn(64, model.generator.style_dim, device=model.device)).mean(0)
    args = argparse.Namespace(size=model.size, latent=model.generator.style_dim, n_mlp=8, channel_multiplier=2)
    rng = np.random.default_rng(seed)
    dim = model.generator.style_dim
    comp = np.linalg.qr(rng.standard_normal((dim, dim)))[0].T.astype(np.float32)
    stdev = np.sort(rng.uniform(0.5, 2.0, dim))[::-1].astype(np.float32).copy()
    return {
        names["image_generator"]: {"g_ema": g, "latent_avg": latent_avg.cpu(), "args": args},
        names["motion_generator"]: cpu_state_dict(model.rnn),
        names["pca_comp"]: comp,
        names["pca_stdev"]: stdev,
    }
