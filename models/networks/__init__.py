"""The learned networks (P2B, B2F, FaceRefine, the appearance encoder) and their inference."""
