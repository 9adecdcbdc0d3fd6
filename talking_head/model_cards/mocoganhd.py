"""MoCoGAN-HD cards: the released (image generator, motion generator, PCA statistics) sets.

MoCoGAN-HD is a *generator* (``kind="generator"``): it makes a face and its motion from seeds and
takes no source photo, so it is listed by ``models`` and the Models/Generate tabs but not by the
Animate/Live pickers. Every file is on Google Drive only (nothing on the Hugging Face Hub): each card
names the Drive links and the exact place in ``weights/`` to put each file.

Image-generator file names are those of the published scripts (``script/*/run_evaluate*.sh``); the
motion-generator folders hold ``modelR_epoch_<N>.pth`` files (FaceForensics: epoch 799, released
after the script's 749). No sha256 is pinned: the files were never published with checksums.
"""
from talking_head.cards import ModelCard, WeightFile

PAPER = "https://openreview.net/forum?id=6puCSjH3hwA"
CODE = "https://github.com/snap-research/MoCoGAN-HD"
PCA_DRIVE = "https://drive.google.com/drive/folders/1zfowC7njgeWeb97eWMVE0VrfUaUHYrK-"

LICENSE = (
    "Non-commercial research use only. Code: Snap Inc.'s research code notice (the source files say no license "
    "is granted to copy, modify, publish or commercialize the sample code; the repository LICENSE adds an MIT-style "
    "grant) plus NVIDIA's StyleGAN2 terms (Nvidia Source Code License-NC: research or evaluation only). "
    "Weights: no license of their own; they are StyleGAN2 generators trained with that NC code (FFHQ-1024 is "
    "NVIDIA's own stylegan2-ffhq-config-f, also NC), so treat every file as non-commercial."
)

MOTION = {"h_dim": 384, "n_pca": 384, "w_residual": 0.2}


def _files(tag: str, image_file: str, image_url: str, motion_file: str, motion_url: str, pca_folder: str,
           image_mb: float | None = None) -> tuple[WeightFile, ...]:
    """The four files of one set, in the order ``models.mocoganhd.ROLES`` reads them."""
    root = f"mocoganhd/{tag}"
    pca = f"{PCA_DRIVE} (subfolder {pca_folder}/)"
    return (
        WeightFile(f"{root}/{image_file}", url=image_url, size_mb=image_mb),
        WeightFile(f"{root}/{motion_file}", url=motion_url, size_mb=14.0),
        WeightFile(f"{root}/pca_comp.npy", url=pca, size_mb=1.0),
        WeightFile(f"{root}/pca_stdev.npy", url=pca),
    )


def _card(tag: str, title: str, description: str, size: int, files, good_at: str, bad_at: str, notes: str,
          fps: int = 10) -> ModelCard:
    return ModelCard(
        name=f"mocoganhd.{tag}",
        family="mocoganhd",
        kind="generator",
        title=title,
        description=description,
        good_at=good_at,
        bad_at=bad_at,
        resolution=size,
        license=LICENSE,
        paper=PAPER,
        code=CODE,
        files=files,
        modes=("generate",),
        default_mode="generate",
        options={
            "generator": {"size": size, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2, "lr_mlp": 0.01},
            "motion": dict(MOTION),
            "fps": fps,
        },
        notes=notes,
    )


def _layout_note(files, renamed: bool) -> str:
    where = ", ".join(f"`weights/{wf.filename}`" for wf in files)
    text = f"Put the four files at {where}."
    if renamed:
        text += (" The motion-generator Drive folder holds `modelR_epoch_<N>.pth` files; the README does not name "
                 "the epoch to use, so save the newest one under the name above.")
    return text


SLOW = "Slow on a CPU (several seconds to a minute per frame); use a GPU."

_FF = _files(
    "faceforensics256", "faceforensics-fid10.9920-snapshot-008765.pt",
    "https://drive.google.com/file/d/1q8K5VCO3e-WTmC2YrI_z3Nqwf2j4BXXa/view",
    "modelR_epoch_799.pth", "https://drive.google.com/drive/folders/1h5Mpcj-ryMqc7m5DVGs40CPoFQKfELP1",
    "faceforensics")
_FFHQ = _files(
    "ffhq256-vox", "ffhq_256.pt", "https://drive.google.com/file/d/1Mw0HvFimDpdHjV1bX_VQXDxIfVKpmqC_/view",
    "modelR.pth", "https://drive.google.com/drive/folders/1m4mueJF-Xk1mJ9VzQq-DL_lWSMK5uKd_", "ffhq_256")
_FFHQ1024 = _files(
    "ffhq1024-vox", "stylegan2-ffhq-config-f.pt", "https://drive.google.com/file/d/1oljdihTnT53CbHrjAe2BMcbueNjH67Gd/view",
    "modelR.pth", "https://drive.google.com/drive/folders/13gDzYnOXJb5t7bkDlO1MmVEFmFG9xiQt", "ffhq_1024")
_AFHQ = _files(
    "afhq512-vox", "afhq-dog-fid7.8476-005655.pt", "https://drive.google.com/file/d/1dx5z0rp3UGyjLTWpf8P69DJy8JS9IPkE/view",
    "modelR.pth", "https://drive.google.com/drive/folders/17hnIg_KeuwK5gUSYa1sfrJAnXbOonUbO", "afhq")
_ANIME = _files(
    "anime512-vox", "2020-01-11-skylion-stylegan2-animeportraits-networksnapshot-024664.pt",
    "https://drive.google.com/file/d/1kd73588GaF1242_WPHQuIwQo2eFJQKwH/view",
    "modelR.pth", "https://drive.google.com/drive/folders/1X5jIUItBtsbkFDcL-gP0bby2JrG0xAZW", "anime")

CARDS: list[ModelCard] = [
    _card("faceforensics256", "MoCoGAN-HD (FaceForensics 256)",
          "Generated talking-news faces and their motion at 256x256: StyleGAN2 trained on FaceForensics, motion "
          "generator epoch 799 (released after the paper for better motion).",
          256, _FF, good_at="Frontal news-anchor faces with mild head and mouth motion; a source face that does not exist.",
          bad_at="Large head turns; identity drifts over long clips; no control over expression.",
          notes=_layout_note(_FF, renamed=False) + " About 90 GFLOP per frame (1-5 s per frame on a laptop CPU)."),
    _card("ffhq256-vox", "MoCoGAN-HD (FFHQ 256, VoxCeleb motion)",
          "Cross-domain: FFHQ faces at 256x256 moved by a motion generator trained on VoxCeleb.",
          256, _FFHQ, good_at="Varied, realistic portrait faces with talking-head motion.",
          bad_at="Identity drifts in long clips; hair and background can flicker with noise on.",
          notes=_layout_note(_FFHQ, renamed=True)),
    _card("afhq512-vox", "MoCoGAN-HD (AFHQ dogs 512, VoxCeleb motion)",
          "Cross-domain: AFHQ dog faces at 512x512 with VoxCeleb talking motion.",
          512, _AFHQ, good_at="Animal (dog) faces that move like a talking person.", bad_at=SLOW,
          notes=_layout_note(_AFHQ, renamed=True) + " " + SLOW),
    _card("anime512-vox", "MoCoGAN-HD (anime portraits 512, VoxCeleb motion)",
          "Cross-domain: anime portraits (skylion's StyleGAN2) at 512x512 with VoxCeleb talking motion.",
          512, _ANIME, good_at="Anime faces with talking-head motion.", bad_at=SLOW,
          notes=_layout_note(_ANIME, renamed=True) + " " + SLOW),
    _card("ffhq1024-vox", "MoCoGAN-HD (FFHQ 1024, VoxCeleb motion)",
          "Cross-domain: NVIDIA's FFHQ 1024x1024 StyleGAN2 (rosinality conversion) with VoxCeleb talking motion.",
          1024, _FFHQ1024, good_at="Megapixel faces.", bad_at=SLOW + " Identity drifts in long clips.",
          notes=_layout_note(_FFHQ1024, renamed=True) + " " + SLOW),
]
