from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

CARDS: list[ModelCard] = [
    ModelCard(
        name="landmark",
        family="landmark",
        title="Landmark warp (offline, no download)",
        description=(
            "Finds 478 face-mesh landmarks (MediaPipe) on the source and on every driving frame, separates the "
            "head's rigid motion from the expression, moves the source landmarks accordingly and warps the source"
            " picture piecewise-affinely to match. Each eye follows its own driving eye: the face mesh's shut eye"
            " (it never reports the lids touching) shuts the source's, and a closing lid is painted down to its "
            "edge as smooth lid skin with a lash line, seamless with the skin around it; past a small gaze move "
            "the iris is redrawn whole where the driving iris is. The skin beside the mouth corners moves with "
            "them (smiles and pouts at full width), and the ring of points around the face follows the face "
            "outline at the forehead and cheeks while the neck stays half put. Where the mouth opens wider than "
            "in the source, the mouth interior is taken from the driving face and colour-matched. The driving "
            "landmarks are steadied by a one-euro filter that answers four times faster on the eyes and lips than"
            " on the head. Runs at the source picture's own resolution and shape, in real time on a CPU."
        ),
        good_at=(
            "Needs no model download and no GPU; keeps every detail and the identity of the source picture; "
            "follows head motion, mouth opening and width, pouts, blinks and winks (per eye), gaze and brows; "
            "works on paintings and drawings MediaPipe can find a face in. Self-reenactment on the five shared "
            "talking clips (whole frames, source = first frame, 4 s each; `python -m talking_head evaluate "
            "--no-crop --max-seconds 4`), scored by dlib's 68-point predictor, which the model does not use: "
            "landmark distance 0.16 of doing nothing (MediaPipe's own landmarks: 0.12), L1 0.73 of doing nothing;"
            " mouth opening follows the driving at r = 0.95, gain 0.83; mouth width r = 0.94, gain 0.90; eye "
            "opening r = 0.81 (0.86-0.90 on four clips), gain 0.89; a real pout narrows the mouth about as much "
            "as the driving's self-reenacted, half as much on another face. About 65-110 frames/s at 256 px on 2 "
            "CPU cores, depending on the machine's load (`python -m talking_head.bench`, without encoding)."
        ),
        bad_at=(
            "Large head turns (no 3-D model: the far cheek is squeezed, hidden parts are never revealed); hair, "
            "ears and shoulders only roughly follow the head; teeth come from the driving face; eyes closed in "
            "the source cannot open convincingly. Eye opening on talk_vox follows at r = 0.50 only: dlib itself "
            "barely sees its blinks (on the real clip dlib and MediaPipe agree on its eyes only at r = 0.6) and "
            "on some frames of a blink MediaPipe sees one eye half open, which the output then shows; on "
            "talk_480, whose eyes mostly widen and narrow with the brows, the gain is 0.75. On nine more real "
            "clips (the KwaiVGI/LivePortrait repository's example driving videos d3, d6, d9, d10, d12, d13, d14, "
            "d19 and d20, MIT) it does worse: eye r about 0.67 (gain 0.69; under 0.4 on d6, d12 and d20, where "
            "MediaPipe and dlib disagree on the real eyes), mouth gain 0.81, width gain 0.80 (L1 0.77, landmark "
            "distance 0.15 of doing nothing), and on nearly still heads (d3, d19) L1 is above doing nothing (up "
            "to 1.4 times): the warp moves the face outline, hair and collar a little where the real ones stay "
            "put. Mouth opening on talk_480 and talk_hdtf follows at gain 0.68-0.71 only."
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
