"""Data sets: arrays, labels and the subject each record is about."""

from mirisk.data.images import ImageDataset, load_image_folder
from mirisk.data.faces import load_faces
from mirisk.data.split import SubjectSplit, split_per_subject

__all__ = ["ImageDataset", "load_image_folder", "load_faces", "SubjectSplit", "split_per_subject"]
