"""Bodies in space and time: the skinned-mesh renderer, warps, retargeting, crops,
smoothing, motion clips, stick figures."""
