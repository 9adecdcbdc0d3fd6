"""First Order Motion Model cards: one per checkpoint published with AliaksandrSiarohin/first-order-model.

``options`` is the published YAML's ``model_params`` (common / kp_detector / generator parts);
all published 256x256 models share the vox-256 architecture except mgif (one jacobian map
shared by all keypoints).
"""
from talking_head.cards import Control, ModelCard, WeightFile

PAPER = "https://papers.nips.cc/paper/8935-first-order-motion-model-for-image-animation"
CODE = "https://github.com/AliaksandrSiarohin/first-order-model"
DRIVE = "https://drive.google.com/open?id=1PyQJmkdCsAkOYwUyaj_l-l0as-iLDgeH"
YANDEX = "https://yadi.sk/d/lEw8uRm140L_eQ"
# The authors' demo notebook downloads all eight checkpoints from this GitHub release (plain HTTPS).
RELEASE = "https://github.com/graphemecluster/first-order-model-demo/releases/download/checkpoints"

LICENSE = (
    "Code: MIT (the repository's LICENSE.md since June 2023; CC BY-NC 4.0 from March 2020 until then). "
    "Weights: no license of their own; they were published with the code while it was CC BY-NC 4.0, "
    "so treat them as non-commercial use only unless the authors allow otherwise."
)

CONTROLS = (
    Control(
        name="relative_jacobian",
        kind="bool",
        default=True,
        label="Relative local turns",
        help="Relative mode only. On: the source keeps its own local shape and only takes the driving "
        "clip's change of rotation/squash since the reference frame (the published demo). Off: the "
        "driving frame's own local rotation/squash is copied, which can distort faces of a different shape.",
    ),
)


def model_params(single_jacobian_map: bool = False) -> dict:
    """The published ``model_params`` (vox-256.yaml; mgif-256.yaml adds single_jacobian_map)."""
    kp_detector = {"temperature": 0.1, "block_expansion": 32, "max_features": 1024, "scale_factor": 0.25, "num_blocks": 5}
    if single_jacobian_map:
        kp_detector["single_jacobian_map"] = True
    return {
        "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": kp_detector,
        "generator_params": {
            "block_expansion": 64,
            "max_features": 512,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 6,
            "estimate_occlusion_map": True,
            "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25},
        },
    }


def _off_hub(filename: str) -> WeightFile:
    """A checkpoint not on the Hub: downloaded from the GitHub release; by hand from Drive or Yandex."""
    return WeightFile(filename=filename, url=f"{DRIVE} (or {YANDEX})", download_url=f"{RELEASE}/{filename}")


COMMON_NOTES = (
    "Weights: downloaded on first use from the GitHub release the authors' demo notebook uses "
    "(first-order-model-demo, tag 'checkpoints'; no sha256 is published, the first download shows it), or put "
    "by hand from the authors' Google Drive/Yandex folder into weights/. "
    "Runs at 256x256. Relative mode (default) moves the source by how the driving clip moves away from "
    "its reference frame; pick a reference frame whose pose matches the source. Absolute mode copies the "
    "driving keypoints as they are and only works when source and driving are framed alike. "
    "The published checkpoint also holds the discriminator and optimizer states; they are ignored. "
    "Warping follows the semantics the model was trained with (grid_sample align_corners=True, torch 1.0); "
    "the original demo run on a modern torch differs slightly."
)


def _card(tag: str, title: str, description: str, good_at: str, bad_at: str, weights: WeightFile, config: str, **kw) -> ModelCard:
    return ModelCard(
        name=f"fomm.{tag}",
        family="fomm",
        title=title,
        description=description,
        good_at=good_at,
        bad_at=bad_at,
        resolution=256,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=(weights,),
        modes=("relative", "absolute"),
        default_mode="relative",
        controls=CONTROLS,
        options=model_params(single_jacobian_map=kw.pop("single_jacobian_map", False)),
        notes=f"Config: config/{config}. " + kw.pop("notes", "") + COMMON_NOTES,
    )


FACE_GOOD = (
    "A face photo looking roughly at the camera, moved by another person's head nods, small turns, "
    "talking and expressions."
)
FACE_BAD = (
    "Big head turns (beyond about 30 degrees) or big changes of distance to the camera; hands, glasses "
    "or hair crossing the face; teeth and the inside of the mouth are invented and often blurry; the "
    "background may wobble with the head; output is only 256x256 pixels."
)

CARDS: list[ModelCard] = [
    _card(
        "vox-adv",
        "FOMM faces (VoxCeleb, adversarial)",
        "First Order Motion Model trained on VoxCeleb talking-head videos, fine-tuned with an adversarial "
        "loss: 10 learned keypoints with local rotations drive a warp of the face photo, and an occlusion "
        "map marks what has to be painted in.",
        FACE_GOOD + " Usually a little sharper than fomm.vox.",
        FACE_BAD,
        WeightFile(
            filename="vox-adv-cpk.pth.tar",
            hf_repo="abhishek/first-order-motion-model",
            hf_path="weights/vox-adv-cpk.pth.tar",
            hf_repo_type="space",
            revision="331ab4cec82a51ee6aa9bfb0560b3c55988e048a",
            size_bytes=750_926_934,
            url=DRIVE,
            download_url=f"{RELEASE}/vox-adv-cpk.pth.tar",
        ),
        "vox-adv-256.yaml",
        notes="Downloaded from the Hugging Face Space abhishek/first-order-motion-model (a third-party mirror, "
        "pinned to one commit), else from the GitHub release the authors' demo notebook uses; the authors "
        "publish the file in their Google Drive folder. No sha256 is published: the size is checked, and the "
        "first download shows the file's sha256 so you can compare it. ",
    ),
    _card(
        "vox",
        "FOMM faces (VoxCeleb)",
        "First Order Motion Model trained on VoxCeleb talking-head videos (the checkpoint of the paper, "
        "without the adversarial fine-tuning).",
        FACE_GOOD,
        FACE_BAD + " Slightly softer than fomm.vox-adv.",
        _off_hub("vox-cpk.pth.tar"),
        "vox-256.yaml",
    ),
    _card(
        "taichi",
        "FOMM full body (Tai-Chi-HD)",
        "First Order Motion Model trained on Tai-Chi-HD: people doing tai chi, filmed whole-body.",
        "A whole person standing in the frame, moved by another person's slow body movements "
        "(arms, legs, turning), on a simple background.",
        "Faces close up, fast movements, hands and faces come out blurry, busy backgrounds, "
        "several people in one picture.",
        _off_hub("taichi-cpk.pth.tar"),
        "taichi-256.yaml",
    ),
    _card(
        "taichi-adv",
        "FOMM full body (Tai-Chi-HD, adversarial)",
        "First Order Motion Model trained on Tai-Chi-HD with an additional adversarial loss.",
        "A whole person standing in the frame, moved by another person's slow body movements, on a "
        "simple background; a little sharper than fomm.taichi.",
        "Faces close up, fast movements, blurry hands and faces, busy backgrounds, several people.",
        _off_hub("taichi-adv-cpk.pth.tar"),
        "taichi-adv-256.yaml",
    ),
    _card(
        "mgif",
        "FOMM cartoons (MGif)",
        "First Order Motion Model trained on MGif, animated GIFs of cartoon animals; all keypoints "
        "share one jacobian map.",
        "Simple drawn characters and animals on a plain background, moved by a similar cartoon clip.",
        "Photos and real faces; detailed or textured drawings; backgrounds that are not plain.",
        _off_hub("mgif-cpk.pth.tar"),
        "mgif-256.yaml",
        single_jacobian_map=True,
    ),
    _card(
        "nemo",
        "FOMM smiles (UvA-NEMO)",
        "First Order Motion Model trained on UvA-NEMO: frontal faces on a plain background that smile.",
        "A frontal, evenly lit face on a plain background taking on a smile from another frontal face.",
        "Head turns, talking, other expressions, busy backgrounds; anything but a frontal face.",
        _off_hub("nemo-cpk.pth.tar"),
        "nemo-256.yaml",
    ),
    _card(
        "bair",
        "FOMM robot arm (BAIR)",
        "First Order Motion Model trained on the BAIR robot-pushing videos (a robot arm moving objects "
        "on a table, seen from above).",
        "Pictures from the BAIR robot-pushing setup, moved by another clip of that setup.",
        "Anything else: faces, people, other scenes. Included for research comparisons.",
        _off_hub("bair-cpk.pth.tar"),
        "bair-256.yaml",
    ),
    _card(
        "fashion",
        "FOMM fashion (full-body models)",
        "First Order Motion Model trained on fashion videos: models in clothes turning and posing in "
        "front of a white background.",
        "A full-body photo of a person on a white background, turned and posed by a fashion clip.",
        "Busy backgrounds, faces close up, big arm movements; faces and fine clothing patterns blur.",
        _off_hub("fashion.pth.tar"),
        "fashion-256.yaml",
        notes="The authors' folder names this file fashion.pth.tar (not fashion-cpk.pth.tar). ",
    ),
]
