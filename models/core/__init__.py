"""Labels, Person and the POSE_KEYPOINT codec; the model cache; inference options."""
