"""Data sets (the built-in toy sets, your own images from folders, zip archives and local
HuggingFace data sets, torchvision sets, the real-MNIST 5k) and the streams that batch them.
Imports only :mod:`gantk.base`.

sources (embedded and torchvision sets, BatchStream) | imagesets (image_folder: folders, class
folders, zips) | labelsfile (dataset.json) | hf (hf_dataset) | decode (opening and decoding one
image safely) | streaming (LoaderStream, ImageFiles) | census (the count line) | mnist5k,
digits_file."""
