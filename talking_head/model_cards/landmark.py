from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

CARDS: list[ModelCard] = [
    ModelCard(
        name="landmark",
        family="landmark",
        title="Landmark warp (offline, no download)",
        description=(
            "Finds 478 face-mesh landmarks (MediaPipe) on the source and on every driving frame, separates "
            "the head's rigid motion from the expression, moves the source landmarks accordingly and warps "
            "the source picture piecewise-affinely to match. Each eye follows its own driving eye: the face "
            "mesh's shut eye (it never reports the lids touching) shuts the source's, and a shut eye is painted "
            "as lid skin with a lash line. Where the mouth opens wider than in the source, the mouth interior "
            "is taken from the driving face and colour-matched. Runs at the source picture's own resolution "
            "and shape, in real time on a CPU."
        ),
        good_at=(
            "Needs no model download and no GPU; keeps every detail and the identity of the source picture; "
            "follows head motion, mouth opening, blinks and winks (per eye), gaze and brows; works on paintings "
            "and drawings MediaPipe can find a face in. Self-reenactment on the five shared talking clips "
            "(whole frames, source = first frame, 4 s each; `python -m talking_head evaluate --no-crop`), "
            "scored by dlib's 68-point predictor, which the model does not use: landmark distance 0.16 of doing "
            "nothing (MediaPipe's own landmarks: 0.12), L1 0.78 of doing nothing; mouth opening follows the "
            "driving at r = 0.95, gain 0.83; mouth width r = 0.92."
        ),
        bad_at=(
            "Large head turns (no 3-D model: the far cheek is squeezed, hidden parts are never revealed); hair, "
            "ears and shoulders only roughly follow the head; teeth come from the driving face; eyes closed "
            "in the source cannot open convincingly. Amplitude is still lost: mouth width (smiles, pouts) "
            "follows with gain 0.77 and wide openings read smaller to dlib than they are (gain 0.83); eye "
            "opening r = 0.77, gain 0.75 on average (0.86 / 0.81 without talk_vox, whose blinks dlib itself "
            "misses); on a nearly still head (talk_480) the warp's resampling makes L1 only 0.97 of doing "
            "nothing."
        ),
        resolution=None,
        license=(
            "MIT (this project's code). Uses MediaPipe's face detection and face mesh models, shipped in the "
            "mediapipe package under Apache-2.0."
        ),
        paper=(
            "Kartynnik et al., Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs "
            "(arXiv:1907.06724); Grishchenko et al., Attention Mesh (arXiv:2006.10962)"
        ),
        code="https://github.com/google-ai-edge/mediapipe",
        files=(),
        modes=("relative", "absolute"),
        default_mode="relative",
        controls=(
            Control("expression", "float", 1.0, "Expression strength", 0.0, 2.0, 0.05,
                    help="Scales the mouth, eye and brow movements (1 = as in the driving video)."),
            Control("head_motion", "float", 1.0, "Head motion", 0.0, 2.0, 0.05,
                    help="Scales the head's turning, tilting and moving in relative mode (0 = keep the head still)."),
            Control("mouth_synthesis", "bool", True, "Paint the open mouth",
                    help="Where the mouth opens wider than in the source, paint teeth and mouth from the driving "
                         "face instead of stretching the lips."),
            Control("smoothing", "float", 0.5, "Smoothing", 0.0, 1.0, 0.05,
                    help="Steadies the driving face's landmarks over time (0 = off); higher values lag more."),
            Control("follow_gaze", "bool", True, "Follow the eyes' gaze",
                    help="Move the irises with the driving eyes (off: they stay centred in the eyelids' motion)."),
        ),
        notes=(
            "Relative mode moves the source by the driving face's change since the reference frame; absolute "
            "mode copies the driving face's shape (similarity-aligned), which distorts a different person's "
            "face. 'Adapt scale' scales movements by the ratio of face sizes. The evaluation's dlib 68-point "
            "predictor (evaluation extra, requirements-eval.txt) was trained on the iBUG 300-W data set, whose "
            "license restricts commercial use: it measures only and is not part of the model."
        ),
    )
]
