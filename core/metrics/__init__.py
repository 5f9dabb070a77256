"""Evaluation metrics: pure functions over arrays, metric objects on top, registered by plugin.

Pure functions (arrays in, floats out), imported from their modules::

    from gantk.metrics.fid import fid, kid, inception_score, frechet_distance
    from gantk.metrics.prdc import prdc, knn_radii
    from gantk.metrics.jsd import jsd_kmeans, jensen_shannon
    from gantk.metrics.modes import mode_metrics, classifier_mode_metrics

Metric objects (the protocol in :mod:`gantk.metrics.base`) wrap them for ``gantk.evaluate``;
:mod:`gantk.metrics.registration` registers them under ``fid``, ``kid``, ``is``, ``prdc``, ``jsd``
and ``modes``; :mod:`gantk.metrics.features` chooses the feature space;
:mod:`gantk.metrics.digits_classifier` is the offline feature net. (The functions are not
re-exported here: ``gantk.metrics.fid`` and ``gantk.metrics.prdc`` must stay the modules.)
"""

from .base import FeatureSet, Metric, MetricError

__all__ = ["FeatureSet", "Metric", "MetricError"]
