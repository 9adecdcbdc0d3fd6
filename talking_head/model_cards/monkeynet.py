"""Monkey-Net cards: one per checkpoint the authors published (configs from the repo's config/*.yaml)."""
from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

CODE = "https://github.com/AliaksandrSiarohin/monkey-net"
PAPER = "https://arxiv.org/abs/1812.08861"
# The README's checkpoint link (Yandex Disk folder); the author later pointed to a second folder
# with the other datasets' checkpoints in issue #29: https://yadi.sk/d/Xy9Pi-nF8jlPgw
README_URL = "https://yadi.sk/d/BX-hwuPEVm6iNw"
ISSUE_URL = "https://yadi.sk/d/Xy9Pi-nF8jlPgw"
# The author's links to single checkpoints: VoxCeleb in issue #16 ("the corresponding config is
# vox.yaml"), Tai-Chi in issue #6. The README folder holds the moving-gif demo checkpoint.
VOX_URL = "https://yadi.sk/d/A0Jq_01xiXky3g"
TAICHI_URL = "https://yadi.sk/d/6vqE41BTZKIAKQ"
LICENSE = "no license stated (the repository has no LICENSE file)"

COMMON = {"num_kp": 10, "kp_variance": "matrix", "num_channels": 3}


def _mask_embedding(norm_const=100, use_difference=False) -> dict:
    params = {"use_heatmap": True, "use_deformed_source_image": True, "heatmap_type": "difference", "norm_const": norm_const}
    if use_difference:
        params["use_difference"] = True
    return params


def _model_params(max_features, gen_blocks, scale=None, interpolation=None, use_difference=False) -> dict:
    """model_params of a published yaml (the discriminator is not needed for inference)."""
    kp = {"temperature": 0.1, "block_expansion": 32, "max_features": max_features, "num_blocks": 5, "clip_variance": 0.001}
    dense = {
        "block_expansion": 32, "max_features": max_features, "num_blocks": 5, "use_mask": True, "use_correction": True,
        "mask_embedding_params": _mask_embedding(use_difference=use_difference), "num_group_blocks": 2,
    }
    embedding = {"use_heatmap": True, "norm_const": 100, "heatmap_type": "difference"}
    gen = {"block_expansion": 32, "max_features": max_features, "num_blocks": gen_blocks, "num_refinement_blocks": 4}
    if scale is not None:
        kp["scale_factor"] = scale
        dense["scale_factor"] = scale
        embedding["scale_factor"] = scale
    if interpolation is not None:
        gen["interpolation_mode"] = interpolation
    gen["dense_motion_params"] = dense
    gen["kp_embedding_params"] = embedding
    return {"common_params": dict(COMMON), "kp_detector_params": kp, "generator_params": gen}


GOOD = (
    "The earliest keypoint-based motion transfer: a historical baseline to compare newer models with. "
    "Small head movements of a face that is posed like the first driving frame."
)
BAD = (
    "Blurry, low-detail faces; identity drifts; large head turns, open mouths and anything the source "
    "does not show come out smeared. Background can wobble with the face."
)
MODES_NOTE = (
    "Modes: 'relative' (the demo's default for this config: keypoints move by the driving frame's "
    "displacement from the reference frame; 'adapt scale' also scales that displacement by the "
    "keypoint-hull size ratio and adapts the keypoint covariances, the published movement_mult + "
    "adapt_variance), 'absolute' (the driving keypoints as they are). Previews: keypoints (with "
    "covariances behind them), detector heatmaps, the dense-motion masks (the mask panel shows the "
    "background channel: where the source is kept still; Monkey-Net has no occlusion map) and the "
    "deformation as motion. "
)


CARDS: list[ModelCard] = [
    ModelCard(
        name="monkeynet.vox",
        family="monkeynet",
        title="Monkey-Net (VoxCeleb faces, 256)",
        description="Monkey-Net trained on VoxCeleb talking faces (config vox.yaml): 10 keypoints with covariances, "
        "detected at 64x64, drive a dense motion field that warps the source's features.",
        good_at=GOOD,
        bad_at=BAD,
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(WeightFile(filename="monkeynet-vox.pth.tar", url=VOX_URL),),
        modes=("relative", "absolute"),
        default_mode="relative",
        options={"model_params": _model_params(1024, 7, scale=0.25, interpolation="trilinear"), "config": "config/vox.yaml"},
        notes=MODES_NOTE
        + f"Weights: the author's VoxCeleb checkpoint ('the corresponding config is vox.yaml', monkey-net issue #16), "
        f"shared on Yandex Disk ({VOX_URL}). Save it as weights/monkeynet-vox.pth.tar. "
        "Loaded with torch weights_only: the published file holds only tensors and numbers.",
    ),
    ModelCard(
        name="monkeynet.nemo",
        family="monkeynet",
        title="Monkey-Net (NEMO smiling faces, 64)",
        description="Monkey-Net trained on the NEMO smile dataset at 64x64 (config nemo.yaml), the paper's face model.",
        good_at=GOOD + " Smiles on tightly cropped frontal faces.",
        bad_at=BAD + " Runs at 64x64 only, so the output is tiny and soft.",
        resolution=64,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(WeightFile(filename="monkeynet-nemo.pth.tar", url=ISSUE_URL),),
        modes=("relative", "absolute"),
        default_mode="relative",
        options={"model_params": _model_params(512, 5), "config": "config/nemo.yaml"},
        notes=MODES_NOTE + f"Weights: the author's NEMO checkpoint on Yandex Disk ({ISSUE_URL}, monkey-net issue #29); "
        "save it as weights/monkeynet-nemo.pth.tar.",
    ),
    ModelCard(
        name="monkeynet.taichi",
        family="monkeynet",
        title="Monkey-Net (Tai-Chi bodies, 64)",
        description="Monkey-Net trained on Tai-Chi videos at 64x64 (config taichi.yaml): whole-body motion.",
        good_at="Whole-body Tai-Chi poses at thumbnail size; a historical baseline.",
        bad_at="Faces (not trained on them); fine detail; runs at 64x64 only.",
        resolution=64,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(WeightFile(filename="monkeynet-taichi.pth.tar", url=TAICHI_URL),),
        modes=("relative", "absolute"),
        default_mode="relative",
        options={"model_params": _model_params(1024, 5), "config": "config/taichi.yaml"},
        notes=MODES_NOTE + f"Weights: the author's Tai-Chi checkpoint on Yandex Disk ({TAICHI_URL}, monkey-net issue #6; "
        f"also in the folder of issue #29, {ISSUE_URL}); "
        "save it as weights/monkeynet-taichi.pth.tar.",
    ),
    ModelCard(
        name="monkeynet.moving-gif",
        family="monkeynet",
        title="Monkey-Net (MGif cartoons, 128)",
        description="Monkey-Net trained on the MGif cartoon-animal dataset at 128x128 (config moving-gif.yaml), "
        "the README demo's model.",
        good_at="Cartoon animals on a plain background, moved with absolute keypoints like the README demo.",
        bad_at="Real faces (not trained on them); textured backgrounds; runs at 128x128.",
        resolution=128,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(WeightFile(filename="monkeynet-moving-gif.pth.tar", url=README_URL),),
        modes=("absolute", "relative"),
        default_mode="absolute",
        options={"model_params": _model_params(1024, 6, scale=0.5, use_difference=True), "config": "config/moving-gif.yaml"},
        notes=MODES_NOTE + "moving-gif.yaml transfers absolute keypoints (move_location False), so 'absolute' is the "
        f"default here. Weights: the README's demo checkpoint ({README_URL}); save it as weights/monkeynet-moving-gif.pth.tar.",
    ),
]
