from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

_REPO = "KwaiVGI/LivePortrait"

# The published models.yaml ``model_params`` (src/config/models.yaml).
MODEL_PARAMS = {
    "appearance_feature_extractor_params": {
        "image_channel": 3, "block_expansion": 64, "num_down_blocks": 2, "max_features": 512,
        "reshape_channel": 32, "reshape_depth": 16, "num_resblocks": 6,
    },
    "motion_extractor_params": {"num_kp": 21, "backbone": "convnextv2_tiny"},
    "warping_module_params": {
        "num_kp": 21, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2, "reshape_channel": 32,
        "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5, "reshape_depth": 16, "compress": 4},
    },
    "spade_generator_params": {"upscale": 2, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2},
    "stitching_retargeting_module_params": {
        "stitching": {"input_size": 126, "hidden_sizes": [128, 128, 64], "output_size": 65},
        "lip": {"input_size": 65, "hidden_sizes": [128, 128, 64], "output_size": 63},
        "eye": {"input_size": 66, "hidden_sizes": [256, 256, 128, 128, 64], "output_size": 63},
    },
}

# Optional: LivePortrait's 203-point landmark model, used for eye/lip ratios when present in weights/ or
# the Hub cache (talking_head.face_ratios); never downloaded on its own and not needed to animate.
LANDMARK_FILE = WeightFile("liveportrait/landmark.onnx", _REPO, "liveportrait/landmark.onnx")

CONTROLS = (
    Control("stitching", "bool", True, label="Stitching",
            help="Let the stitching network keep the shoulders/crop border still (recommended)."),
    Control("driving_multiplier", "float", 1.0, label="Motion strength", minimum=0.0, maximum=2.0, step=0.05,
            help="Scale the keypoint motion: x_d = x_s + (x_d - x_s) * strength."),
    Control("animation_region", "choice", "all", label="Animated region", choices=("all", "exp", "pose", "lip", "eyes"),
            help="all: pose and expression; exp: expression only; pose: head pose only; lip / eyes: those keypoints only."),
    Control("driving_option", "choice", "expression-friendly", label="Driving option",
            choices=("expression-friendly", "pose-friendly"),
            help="expression-friendly rescales relative motion by the keypoint-hull volume ratio of source and reference."),
    Control("normalize_lip", "bool", False, label="Close source lips first",
            help="Relative motion: close the source's mouth before animating (needs the source lip ratio)."),
    Control("eye_retargeting", "bool", False, label="Eye retargeting",
            help="Drive eye openness with the eye MLP from the driving eye ratios (or the slider). With relative motion "
                 "this replaces the driving motion, as in the original."),
    Control("eye_open", "float", 0.35, label="Target eye-open ratio", minimum=0.0, maximum=0.8, step=0.01,
            help="Used by eye retargeting when no driving eye ratios are available, and by pose editing."),
    Control("lip_retargeting", "bool", False, label="Lip retargeting",
            help="Drive mouth openness with the lip MLP from the driving lip ratios (or the slider). With relative "
                 "motion this replaces the driving motion, as in the original."),
    Control("lip_open", "float", 0.0, label="Target lip-open ratio", minimum=0.0, maximum=0.8, step=0.01,
            help="Used by lip retargeting when no driving lip ratios are available, and by pose editing."),
    Control("pitch", "float", 0.0, label="Pitch offset (deg)", minimum=-30.0, maximum=30.0, step=1.0,
            help="Added to the head pitch (nod) of every frame."),
    Control("yaw", "float", 0.0, label="Yaw offset (deg)", minimum=-45.0, maximum=45.0, step=1.0,
            help="Added to the head yaw (turn) of every frame."),
    Control("roll", "float", 0.0, label="Roll offset (deg)", minimum=-30.0, maximum=30.0, step=1.0,
            help="Added to the head roll (tilt) of every frame."),
)

CARDS: list[ModelCard] = [
    ModelCard(
        name="liveportrait.human",
        family="liveportrait",
        title="LivePortrait (human)",
        description=(
            "Implicit 3-D keypoints with head pose, expression, stitching and eye/lip retargeting; "
            "animates a 256x256 face crop into a 512x512 result."
        ),
        good_at="Realistic faces, large expression range, head turns, eye and lip control, editing a still photo's pose.",
        bad_at="Big head rotations beyond ~30 degrees, non-human faces, long hair and shoulders far from the face.",
        resolution=256,
        license="MIT",
        paper="https://arxiv.org/abs/2407.03168",
        code="https://github.com/KwaiVGI/LivePortrait",
        # sha256 and sizes as seen on two independent mirrors. No revision is pinned: no commit hash of the
        # Hub repository's main branch could be confirmed from here (the Hub cannot be reached).
        files=(
            WeightFile("liveportrait/appearance_feature_extractor.pth", _REPO, "liveportrait/base_models/appearance_feature_extractor.pth",
                       sha256="5279bb8654293dbdf327030b397f107237dd9212fb11dd75b83dfb635211ceb5", size_bytes=3_387_959),
            WeightFile("liveportrait/motion_extractor.pth", _REPO, "liveportrait/base_models/motion_extractor.pth",
                       sha256="251e6a94ad667a1d0c69526d292677165110ef7f0cf0f6d199f0e414e8aa0ca5", size_bytes=112_545_506),
            WeightFile("liveportrait/warping_module.pth", _REPO, "liveportrait/base_models/warping_module.pth",
                       sha256="2f61a6f265fe344f14132364859a78bdbbc2068577170693da57fb96d636e282", size_bytes=182_180_086),
            WeightFile("liveportrait/spade_generator.pth", _REPO, "liveportrait/base_models/spade_generator.pth",
                       sha256="4780afc7909a9f84e24c01d73b31a555ef651521a1fe3b2429bd04534d992aee", size_bytes=221_813_590),
            WeightFile("liveportrait/stitching_retargeting_module.pth", _REPO,
                       "liveportrait/retargeting_models/stitching_retargeting_module.pth", size_mb=2.4),
        ),
        modes=("relative", "absolute"),
        default_mode="relative",
        controls=CONTROLS,
        options={"model_params": MODEL_PARAMS, "output_resolution": 512, "landmark_file": LANDMARK_FILE},
        notes=(
            "Crops come from our MediaPipe pipeline, not the original's InsightFace crop, so framing differs a "
            "little from the original app. Eye/lip ratios for retargeting come from the original's own 203-point "
            "landmark model when its optional file is present (Hub KwaiVGI/LivePortrait, liveportrait/landmark.onnx, "
            "MIT; put it at weights/liveportrait/landmark.onnx); without it they are approximated from MediaPipe "
            "landmarks (same gap/width ratios on MediaPipe's points, so values differ a little). "
            "Output is 512x512 for a 256x256 input."
        ),
    )
]
