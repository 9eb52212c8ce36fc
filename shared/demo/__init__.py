"""The demo world at run time: the shipped bundle (shared/demo/bundle/) and the loaders of its
networks (predictor, CLIP, flow, directions, attribute channels). Training, evaluation and bundle
building live in `training.demo`."""
