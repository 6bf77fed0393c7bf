"""Segmentation of the customer 360 profile: RFM with named segments, KMeans clusters,
engagement × value quadrants and segment migration between runs."""
