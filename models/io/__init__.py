"""Files: the weight registry and downloads, checkpoint loading, video reading and writing."""
