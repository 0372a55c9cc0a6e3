"""What berth knows about storage providers: their documented limits and its StorageClass presets.

Below the spec: the spec model, the validator, the renderer and the linter all read it, and it
imports nothing from them (:mod:`limits` for anyone's StorageClass, :mod:`presets` for the
classes berth creates).
"""
