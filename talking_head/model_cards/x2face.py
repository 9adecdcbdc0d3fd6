"""X2Face card: the released face-to-face model of the ECCV 2018 paper."""
from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

PROJECT_PAGE = "https://www.robots.ox.ac.uk/~vgg/research/unsup_learn_watch_faces/x2face.html"

CARDS: list[ModelCard] = [
    ModelCard(
        name="x2face.released",
        family="x2face",
        title="X2Face (VoxCeleb faces, 256)",
        description="X2Face: one U-Net turns the source photo into a frontal 'embedded face', a second U-Net turns "
        "each driving frame into a sampling grid that reads the output from that embedded face. No keypoints.",
        good_at="The oldest model here: a baseline to compare with. Copies the driving head's pose and expression "
        "directly, so it needs no reference frame; quick.",
        bad_at="Blurry, smeared faces; the driving person's face shape leaks into the result; black borders where "
        "the grid samples outside the face; large head turns and anything the source does not show.",
        resolution=256,
        license="MIT License (Copyright (c) 2020 Olivia), from the repository's LICENSE file",
        paper="https://arxiv.org/abs/1807.10550",
        code="https://github.com/oawiles/X2Face",
        files=(WeightFile(filename="x2face_model.pth", url=PROJECT_PAGE),),
        modes=("absolute",),
        default_mode="absolute",
        options={"inner_nc": 128, "ngf": 64, "num_downs": 8},
        notes="Mode: 'absolute' only. X2Face drives the output from each driving frame alone, so the relative "
        "and adapt-scale settings and the reference frame have no effect. Previews: motion = where each output "
        "pixel comes from in the source (both sampling grids composed); extras = the embedded face, the "
        "embedding network's confidence, the driving network's grid and its 128-number driving vector. "
        "Weights: x2face_model.pth from the authors' project page (download section), saved as "
        "weights/x2face_model.pth; the port uses its 'state_dict' entry. The file was written by torch 0.2 in "
        "the old (non-zip) format; it is read with torch weights_only, and if that refuses the file the "
        "loader reports a clear CheckpointError instead of running arbitrary code (convert it to "
        "safetensors on a trusted machine then). Runs with the sampling conventions of torch 0.2 "
        "(aligned corners), as the README says the weights need.",
    ),
]
