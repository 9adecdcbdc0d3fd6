"""MRAA cards: one per checkpoint published with snap-research/articulated-animation.

``options['model_params']`` is the ``model_params`` block of the published ``config/<name>.yaml``
unchanged, except that the region predictor's ``pad`` is always written out: vox256.yaml sets none,
so the constructor default 3 applies (64x64 region maps); the other YAMLs set 0 (58x58, 90x90 at
384). The Generator and AVD network use ``revert_axis_swap: True``, as the YAMLs and demo.py do.
"""
from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

CODE = "https://github.com/snap-research/articulated-animation"
PAPER = "https://arxiv.org/abs/2104.11280"
DRIVE = "https://drive.google.com/drive/folders/1jCeFPqfU_wKNYwof0ONICwsj3xHlr_tb?usp=sharing"
LICENSE = (
    "Snap Inc. sample-code notice (LICENSE.md): made available for informational purposes only; no rights "
    "to copy, modify, publish, distribute or commercialise are granted without a separate agreement. "
    "The checkpoints come with no other terms."
)
MODES = ("standard", "relative", "avd")


def _model_params(pad: int, bg_type: str, num_regions: int = 10) -> dict:
    return {
        "num_regions": num_regions,
        "num_channels": 3,
        "estimate_affine": True,
        "revert_axis_swap": True,
        "bg_predictor_params": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5, "bg_type": bg_type},
        "region_predictor_params": {
            "temperature": 0.1,
            "block_expansion": 32,
            "max_features": 1024,
            "scale_factor": 0.25,
            "num_blocks": 5,
            "pca_based": True,
            "pad": pad,
            "fast_svd": False,
        },
        "generator_params": {
            "block_expansion": 64,
            "max_features": 512,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 6,
            "skips": True,
            "pixelwise_flow_predictor_params": {
                "block_expansion": 64,
                "max_features": 1024,
                "num_blocks": 5,
                "scale_factor": 0.25,
                "use_deformed_source": True,
                "use_covar_heatmap": True,
                "estimate_occlusion_map": True,
            },
        },
        "avd_network_params": {"id_bottle_size": 64, "pose_bottle_size": 64},
    }


_MODE_NOTES = (
    "Modes: 'relative' (default) moves the source by how the driving frame differs from the reference frame; "
    "'standard' copies the driving frame's regions as they are; 'avd' (the authors' demo default) keeps the "
    "source's shape and takes only the pose from the driving frame."
)


def _card(tag, title, description, good_at, bad_at, filename, sha256, config, pad, bg_type,
          resolution=256, size_mb=None, extra_notes="", size_bytes=None, num_regions=10):
    return ModelCard(
        name=f"mraa.{tag}",
        family="mraa",
        title=title,
        description=description,
        good_at=good_at,
        bad_at=bad_at,
        resolution=resolution,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(WeightFile(filename=filename, hf_repo=None, sha256=sha256, size_mb=size_mb, size_bytes=size_bytes, url=DRIVE),),
        modes=MODES,
        default_mode="relative",
        controls=(),
        options={"model_params": _model_params(pad, bg_type, num_regions), "config": config},
        notes=(
            f"Config: {config} of the published code. "
            + _MODE_NOTES
            + " The weights are only on the authors' Google Drive folder: download "
            + f"'{filename}' from there into weights/. The sha256 on the card is that of the authors' git-LFS "
            "copy; a Drive copy whose hash differs can be kept with --trust-file. "
            + extra_notes
        ).strip(),
    )


CARDS: list[ModelCard] = [
    _card(
        "vox256",
        "MRAA faces (VoxCeleb, 256 px)",
        "Motion Representations for Articulated Animation trained on talking-head videos (VoxCeleb): "
        "the face is split into ten moving parts, each following its match in the driving video.",
        good_at="Front-facing talking heads: head turns and nods, mouth and eye movement, with a steady "
        "background. Copes with larger head motion than keypoint-only models.",
        bad_at="Faces seen from the side or large turns away from the camera, glasses and hands in front of "
        "the face, and anything outside the face crop (shoulders, hair ends smear). Only 256x256 output.",
        filename="vox256.pth",
        sha256="a8c59e0b38f96195eac6414265dcf8e4b15e0675cea2622489b735edc61b3b66",
        config="config/vox256.yaml",
        pad=3,
        bg_type="affine",
        size_mb=291.7,
        extra_notes="The region predictor uses the constructor default padding 3 (the YAML sets no 'pad'), "
        "so its region maps are 64x64.",
    ),
    _card(
        "taichi256",
        "MRAA full body (TaiChi, 256 px)",
        "Motion Representations for Articulated Animation trained on tai-chi videos: a whole standing "
        "person is animated part by part (arms, legs, torso) from a driving video.",
        good_at="Whole-body motion of one person standing in the frame, e.g. dance or exercise moves, "
        "when source and driving people are framed the same way.",
        bad_at="Faces (use the vox256 model), close-ups, several people, or very different body shapes "
        "and clothing between source and driving; small details such as hands and faces blur.",
        filename="taichi256.pth",
        sha256="6fd5ebb68953d6c7d02ff765986efa1c8a62d349817fe736a6069e07dc8c17af",
        config="config/taichi256.yaml",
        pad=0,
        bg_type="affine",
        size_mb=273.4,
    ),
    _card(
        "ted384",
        "MRAA upper body (TED talks, 384 px)",
        "Motion Representations for Articulated Animation trained on TED-talk videos at 384x384: "
        "a speaker's upper body, arms and head follow the driving speaker.",
        good_at="Presenters and speakers filmed from the waist up: gestures, arm and head movement, at a "
        "higher resolution (384x384) than the other models.",
        bad_at="Close-up faces (use vox256), fine facial expressions, fast hand movement and busy "
        "backgrounds; slower than the 256 px models.",
        filename="ted384.pth",
        sha256="5c88fb60718a64a8fd87043b0e95781b50e500457d03bf3b4fd26cca6b70c3f7",
        config="config/ted384.yaml",
        pad=0,
        bg_type="affine",
        resolution=384,
        size_mb=273.4,
    ),
    _card(
        "ted-youtube384",
        "MRAA upper body (TED talks from YouTube, 384 px, 20 regions)",
        "Motion Representations for Articulated Animation trained on the larger TED-talk set collected from "
        "YouTube at 384x384, with twenty moving parts instead of ten.",
        good_at="Presenters and speakers filmed from the waist up, like ted384, with finer parts (twenty "
        "regions) for arms and hands.",
        bad_at="Close-up faces (use vox256), fine facial expressions, fast hand movement and busy "
        "backgrounds; slower than the 256 px models.",
        filename="ted-youtube384.pth",
        sha256="75ce78089fc2f0b0a276346bf8f14c2043895845ed869bdbe9b2656d3feec13b",
        config="config/ted-youtube384.yaml",
        pad=0,
        bg_type="affine",
        resolution=384,
        size_bytes=292_943_746,
        num_regions=20,
        extra_notes="Its config sets num_regions 20 (the other MRAA configs use 10).",
    ),
    _card(
        "mgif256",
        "MRAA cartoon animals (Moving GIF, 256 px)",
        "Motion Representations for Articulated Animation trained on the Moving-GIF set of cartoon "
        "animals on white backgrounds.",
        good_at="Simple drawn characters and animals on a plain light background, animated by another "
        "such clip.",
        bad_at="Real photos and faces, cluttered backgrounds; meant as a demonstration model.",
        filename="mgif256.pth",
        sha256="58b796e31f763ccfbb240f959c9d92c2afe8a6e57da303e07d8fabd1f2921c68",
        config="config/mgif256.yaml",
        pad=0,
        bg_type="zero",
        size_mb=248.3,
        extra_notes="Its config has no background network (bg_type 'zero').",
    ),
]
