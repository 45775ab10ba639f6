"""The tiny configuration the tests run: a 3-subject, 9-clip synthetic dataset."""

TINY_SYNTH = {
    "seed": 3,
    "subjects": 3,
    "samples_per_class": 1,
    "frame_size": 160,
    "clip_frames": 32,
}
