"""Thin-Plate Spline Motion Model cards (Zhao & Zhang, CVPR 2022): one per published checkpoint."""
from talking_head.cards import Control, ModelCard, WeightFile

CODE = "https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model"
PAPER = "https://arxiv.org/abs/2203.14367"
DOWNLOAD = "https://drive.google.com/drive/folders/1pNDo1ODQIb5HVObRtCmubqJikmR7VVLT"  # README: Google Drive
LICENSE = (
    "MIT (the repository's license, Copyright (c) 2021 yoyo-nb; the checkpoints are released there with no "
    "separate terms). Trained on research video datasets whose clips have their own rights."
)
MODES = ("standard", "relative", "avd")

BACKGROUND = Control(
    name="background_motion",
    kind="bool",
    default=False,
    label="Follow camera motion",
    help="Also move the background the way the camera moves between the source and each driving frame "
    "(the model's background predictor). Best when the source picture is a frame of the driving video.",
)


def _model_params(bg: bool) -> dict:
    """The ``model_params`` of the published config/*.yaml (all four share them except ``bg``)."""
    return {
        "common_params": {"num_tps": 10, "num_channels": 3, "bg": bg, "multi_mask": True},
        "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 3},
        "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25},
        "avd_network_params": {"id_bottle_size": 128, "pose_bottle_size": 128},
    }


def _local(name: str) -> WeightFile:
    return WeightFile(filename=f"tpsmm-{name}.pth.tar", url=DOWNLOAD)


MODE_NOTE = (
    "Modes: 'relative' (default) moves the source by how the driving face moves from the reference frame; "
    "'standard' copies the driving frame's keypoints as they are (works when source and driving look alike); "
    "'avd' keeps the source's shape and takes only the pose from the driving frame (needs the AVD network, "
    "which the file must contain)."
)

CARDS: list[ModelCard] = [
    ModelCard(
        name="tpsmm.vox",
        family="tpsmm",
        title="Thin-Plate Spline Motion Model (faces, VoxCeleb)",
        description="Animates a face photo with the head movements and expressions of a driving video, "
        "using ten smooth 'rubber-sheet' warps and a network that paints in what the warps reveal.",
        good_at="Talking heads: speech, expressions and moderate head turns of one face, cropped to the head and "
        "shoulders; keeps the face shape better than the first-order model when the head turns.",
        bad_at="Large head turns or profile views, hands or objects in front of the face, the inside of the mouth "
        "and teeth (blurry), glasses reflections, hair far from the face. Output is 256x256 pixels.",
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(
            WeightFile(
                filename="tpsmm-vox.pth.tar",
                hf_repo="vessl/thin-plate-spline-motion-model",
                hf_path="vox.pth.tar",
                revision="e59dcf41335c82b47745cb0c8184db1c489a894d",
                sha256="52ad8c848e2a1d91b621de96fea83faf57ce3b8c1c06424e317f4df1d3998204",
                size_bytes=350_993_469,
                url=DOWNLOAD,
            ),
        ),
        modes=MODES,
        default_mode="relative",
        controls=(BACKGROUND,),
        options={"model_params": _model_params(bg=True), "config": "config/vox-256.yaml"},
        notes=MODE_NOTE + " The file is the authors' vox.pth.tar, mirrored on the Hugging Face Hub.",
    ),
    ModelCard(
        name="tpsmm.taichi",
        family="tpsmm",
        title="Thin-Plate Spline Motion Model (full body, TaiChiHD)",
        description="Moves a whole standing person in a photo the way the person in a driving video moves.",
        good_at="Full-body movement of one person standing in the middle of the picture, seen from the front "
        "against a calm outdoor or plain background (slow tai chi-like motion).",
        bad_at="Faces and hands (small and blurry), fast or acrobatic moves, several people, people cut off at the "
        "frame edge, loose clothes flying. Output is 256x256 pixels.",
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(_local("taichi"),),
        modes=MODES,
        default_mode="relative",
        controls=(BACKGROUND,),
        options={"model_params": _model_params(bg=True), "config": "config/taichi-256.yaml"},
        notes=MODE_NOTE + " Download taichi.pth.tar from the authors' page (about 350 MB) and save it as "
        "weights/tpsmm-taichi.pth.tar.",
    ),
    ModelCard(
        name="tpsmm.ted",
        family="tpsmm",
        title="Thin-Plate Spline Motion Model (speakers, TED talks, 384 px)",
        description="Moves the upper body, arms and head of a speaker in a photo like the speaker in a driving video.",
        good_at="A person seen from the waist up, talking and gesturing like a presenter on stage; a larger "
        "384x384 output than the other models.",
        bad_at="Close-up faces (the face is small in this model's pictures), fast hand motion, crossing arms, "
        "several people or a busy moving background.",
        resolution=384,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(_local("ted"),),
        modes=MODES,
        default_mode="relative",
        controls=(BACKGROUND,),
        options={"model_params": _model_params(bg=True), "config": "config/ted-384.yaml"},
        notes=MODE_NOTE + " Download ted.pth.tar from the authors' page (about 350 MB) and save it as "
        "weights/tpsmm-ted.pth.tar.",
    ),
    ModelCard(
        name="tpsmm.mgif",
        family="tpsmm",
        title="Thin-Plate Spline Motion Model (cartoons, Moving GIF)",
        description="Animates a simple cartoon animal or character drawn on a white background with the motion of "
        "a cartoon clip.",
        good_at="Flat cartoon animals and characters on a plain white background, walking or running like the "
        "driving clip.",
        bad_at="Photographs, real people and faces, textured or coloured backgrounds. Output is 256x256 pixels.",
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(_local("mgif"),),
        modes=MODES,
        default_mode="relative",
        controls=(),
        options={"model_params": _model_params(bg=False), "config": "config/mgif-256.yaml"},
        notes=MODE_NOTE + " This model has no background predictor. Download mgif.pth.tar from the authors' page "
        "and save it as weights/tpsmm-mgif.pth.tar.",
    ),
]
