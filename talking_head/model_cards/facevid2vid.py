"""face-vid2vid cards: the "Vox-256-New" checkpoint of zhanglonghao1992's re-implementation.

``options["model_params"]`` is the published ``config/vox-256.yaml`` ``model_params`` (common /
kp_detector / he_estimator / generator parts; the discriminator is not built).
"""
from talking_head.cards import Control, ModelCard, WeightFile

PAPER = "https://arxiv.org/abs/2011.15126"
CODE = "https://github.com/zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis"

MODEL_PARAMS = {
    "common_params": {"num_kp": 15, "image_channel": 3, "feature_channel": 32, "estimate_jacobian": False},
    "kp_detector_params": {
        "temperature": 0.1, "block_expansion": 32, "max_features": 1024, "scale_factor": 0.25, "num_blocks": 5,
        "reshape_channel": 16384, "reshape_depth": 16,
    },
    "he_estimator_params": {"block_expansion": 64, "max_features": 2048, "num_bins": 66},
    "generator_params": {
        "block_expansion": 64, "max_features": 512, "num_down_blocks": 2, "reshape_channel": 32, "reshape_depth": 16,
        "num_resblocks": 6, "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5, "reshape_depth": 16,
                                "compress": 4},
    },
}

LICENSE = (
    "CC BY-NC 4.0: non-commercial use only (the re-implementation's code and weights; face-vid2vid itself is "
    "NVIDIA's research, not released as weights)."
)

SIZE_MB = 2110.0  # the file also holds the discriminator and optimizer states (ignored)

CONTROLS = (
    Control("pose_mode", "choice", "offset", label="Head pose sliders", choices=("offset", "fixed"),
            help="offset: yaw/pitch/roll are added to the driving frame's head pose; fixed: the head takes exactly "
                 "these angles in every frame (free view), while the driving clip still gives the expression."),
    Control("yaw", "float", 0.0, label="Yaw (deg)", minimum=-60.0, maximum=60.0, step=1.0,
            help="Head turn, left/right."),
    Control("pitch", "float", 0.0, label="Pitch (deg)", minimum=-45.0, maximum=45.0, step=1.0,
            help="Head nod, up/down."),
    Control("roll", "float", 0.0, label="Roll (deg)", minimum=-45.0, maximum=45.0, step=1.0,
            help="Head tilt towards a shoulder."),
)

CARDS: list[ModelCard] = [
    ModelCard(
        name="facevid2vid.vox",
        family="facevid2vid",
        title="face-vid2vid (VoxCeleb 256, free view)",
        description=(
            "One-shot free-view talking heads: 15 implicit 3-D keypoints, head pose (yaw, pitch, roll), translation "
            "and expression deltas, a 3-D warp of the source's feature volume and a SPADE decoder. The head can be "
            "re-posed freely while the driving clip supplies the expression."
        ),
        good_at="Head turns, re-posing a photo with the pose sliders, expression transfer between people.",
        bad_at="Large rotations beyond ~30 degrees, non-human faces; slow on a CPU (several seconds a frame).",
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(
            WeightFile(
                filename="facevid2vid_00189-model.pth.tar",
                hf_repo="vinthony/SadTalker",  # the model repository, file at its root (not the Space)
                hf_path="facevid2vid_00189-model.pth.tar",
                revision=None,  # no commit hash of the repository could be verified here; the sha256 pins the file
                sha256="fbad01d46f0510276dc4521322dde6824a873a4222cd0740c85762e7067ea71d",
                size_mb=SIZE_MB,
                url="https://huggingface.co/vinthony/SadTalker",
            ),
        ),
        modes=("relative", "absolute"),
        default_mode="relative",
        controls=CONTROLS,
        options={"model_params": MODEL_PARAMS},
        notes=(
            "Download: 2.1 GB (facevid2vid_00189-model.pth.tar from the Hugging Face model repository "
            "vinthony/SadTalker); license CC BY-NC 4.0, non-commercial use only. "
            "The weights are the 'Vox-256-New' checkpoint of zhanglonghao1992's re-implementation (the one SadTalker "
            "ships); only its generator, kp_detector and he_estimator are read, the training entries are ignored. "
            "Relative motion with adapt scale is the published demo's `--relative --adapt_scale`; the pose sliders "
            "in 'fixed' mode are its `--free_view --yaw --pitch --roll`. Runs at 256x256."
        ),
    )
]
