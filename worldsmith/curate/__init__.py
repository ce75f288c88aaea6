"""Video curation: raw videos and episode datasets in, WebDataset clip shards and a Parquet catalog out.

    worldsmith curate synth --out raw/synth.mp4                 # a compilation with planted problems + truth
    worldsmith curate run raw/ data/robot --out curated --workers 2 [--engine ray]
    worldsmith curate report curated                            # funnel, reasons, histograms, contact sheets

Stages (pipeline.py, each a function of a clip; engines.py runs them locally or on Ray):
decode (video.py) -> shots and windows (split.py, PySceneDetect) -> motion (motion.py, DIS flow + affine
camera fit) -> quality (quality.py) -> burnt-in text (textdetect.py) -> transcode (H.264) ->
fingerprints (embed.py) -> dedup exact / near / semantic (dedup.py) -> tags and captions (caption.py) ->
shards and catalog (shard.py). run.py makes a run resumable: one atomic completion record per input.
Trainers read the shards with `dataset.iter_shard_clips` or `dataset.ClipShardDataset`.
"""
