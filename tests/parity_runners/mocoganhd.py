"""MoCoGAN-HD parity: our StyleGAN2 + RNNModule, filled like the fixture (fill_stylegan2 / fill), fed the
fixture's random draws, through the model's own mapping, trajectory, interpolation and synthesis."""
from __future__ import annotations

import numpy as np
import torch

from talking_head.models import mocoganhd
from talking_head.registry import get_card
from tests.parity_runners import fill_module, fixture_module

# The fixture's fixed inputs (the draws and the PCA basis): fed in, not compared.
INPUTS = ("z", "noise.eps", "clean.eps", "long.eps", "batch2.z", "batch2.eps", "mapping.z4", "pca_comp", "pca_stdev",
          *(f"noise_input.{i:02d}" for i in range(13)))


def build(meta: dict) -> mocoganhd.MoCoGANHD:
    card = get_card("mocoganhd.faceforensics256")
    config = meta["config"]
    g = card.options["generator"]
    assert (g["size"], g["n_mlp"], g["channel_multiplier"], g["lr_mlp"]) == (
        config["style_gan_size"], config["n_mlp"], config["channel_multiplier"], config["lr_mlp"])
    assert card.options["motion"] == {k: config[k] for k in ("h_dim", "n_pca", "w_residual")}
    model = mocoganhd.create(card, None, torch.device("cpu"))
    own = model.generator.state_dict()
    filled = fixture_module("fill_stylegan2").fill_stylegan2({k: v.numpy() for k, v in own.items()}, meta["seed"])
    model.generator.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in filled.items()}, strict=True)
    fill_module(model.rnn, meta["seed"])
    return model


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).float().numpy()


def _video(model, fixture, name: str, eps: np.ndarray, noise) -> dict:
    draws = mocoganhd.Draws(z=torch.from_numpy(fixture["z"]), eps=torch.from_numpy(eps)[:, None], noise=noise)
    traj = model.trajectory(draws)
    out = {f"{name}.w_trajectory": traj.w.numpy(), f"{name}.lstm_h": traj.h[0].numpy(),
           f"{name}.lstm_c": traj.c[0].numpy(), f"{name}.e_rec": traj.e_rec.numpy()}
    trace: dict = {}
    with torch.inference_mode():
        images = model.generator.synthesize(traj.w, noise, trace=trace)
        ends = [0, images.shape[0] - 1]
        out[f"{name}.conv1"] = _hwc(trace["conv1"][ends])
        out[f"{name}.conv1_style"] = trace["conv1_style"].numpy()
        for r in (4, 8, 16, 32, 64):
            out[f"{name}.skip.{r:03d}"] = _hwc(trace[f"skip.{r:03d}"])
        frames = _hwc(images)
        out[f"{name}.image"] = frames if name == "clean" else frames[ends]
        if name == "noise":
            out["noise.image_sub4"] = frames[:, ::4, ::4]
        out[f"{name}.video_uint8"] = mocoganhd.to_uint8(images[ends])
        latents = mocoganhd.interpolate(traj.w)
        out[f"interpolation.{name}.w"] = latents.numpy()
        mids = model.generator.synthesize(latents[1::2], noise)
        out[f"interpolation.{name}.midpoint_sub4"] = _hwc(mids)[:, ::4, ::4]
    return out


def run(fixture: dict) -> dict[str, np.ndarray]:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    meta = fixture["meta"]
    model = build(meta)
    model.rnn.set_pca(torch.from_numpy(fixture["pca_comp"]), torch.from_numpy(fixture["pca_stdev"]))
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        out["w"] = model.generator.map(torch.from_numpy(fixture["z"])).numpy()
        out["mapping.w4"] = model.generator.map(torch.from_numpy(fixture["mapping.z4"])).numpy()
        w = torch.from_numpy(out["w"])
        out["long.w_trajectory"] = model.rnn(w, torch.from_numpy(fixture["long.eps"])[:, None]).w.numpy()
        w2 = model.generator.map(torch.from_numpy(fixture["batch2.z"]))
        out["batch2.w_trajectory"] = model.rnn(w2, torch.from_numpy(fixture["batch2.eps"])).w.reshape(2, -1, 512).numpy()
    noise = [torch.from_numpy(fixture[f"noise_input.{i:02d}"])[None, None] for i in range(13)]
    out.update(_video(model, fixture, "clean", fixture["clean.eps"], None))
    out.update(_video(model, fixture, "noise", fixture["noise.eps"], noise))
    return out


def tolerance(meta: dict, name: str) -> float:
    if name.endswith("video_uint8"):
        return float(meta["tolerances"]["video_uint8"]["max_abs"])
    return float(meta["tolerances"]["per_array"][name])


def extra_checks(fixture: dict, produced: dict) -> list[str]:
    """The uint8 rule (at most 1% of the values off by one) and the exact conversion of the stored floats."""
    rule = fixture["meta"]["tolerances"]["video_uint8"]
    problems = []
    for name in ("clean.video_uint8", "noise.video_uint8"):
        differ = float(np.mean(produced[name] != fixture[name]))
        if differ > rule["max_fraction_differing"]:
            problems.append(f"{name}: {differ:.2%} of the values differ (limit {rule['max_fraction_differing']:.0%})")
    stored = {"clean.video_uint8": fixture["clean.image"][[0, 3]], "noise.video_uint8": fixture["noise.image"]}
    for name, floats in stored.items():
        converted = mocoganhd.to_uint8(torch.from_numpy(floats).permute(0, 3, 1, 2))
        if not np.array_equal(converted, fixture[name]):
            problems.append(f"{name}: to_uint8 of the stored float frames is not bit-exact")
    return problems
