"""Datasets: the course's cats, MNIST t10k, Auto MPG, synthetic sets, fetching."""

from jaxnet.data.autompg import AUTOMPG_SHA256, AutoMPG, load_autompg
from jaxnet.data.catvnoncat import CATVNONCAT_SHA256, CatData, load_catvnoncat
from jaxnet.data.fetch import DATASETS, FetchError, fetch_dataset, sha256_of
from jaxnet.data.locate import (
    DatasetError,
    DatasetNotFoundError,
    cache_dir,
    find_dataset_dir,
)
from jaxnet.data.mnist import MNIST_T10K_SHA256, load_mnist_t10k, split_digits
from jaxnet.data.synthetic import planar_flower, spirals, two_blobs

__all__ = [
    "AUTOMPG_SHA256",
    "AutoMPG",
    "CATVNONCAT_SHA256",
    "DATASETS",
    "MNIST_T10K_SHA256",
    "CatData",
    "DatasetError",
    "DatasetNotFoundError",
    "FetchError",
    "cache_dir",
    "fetch_dataset",
    "find_dataset_dir",
    "load_autompg",
    "load_catvnoncat",
    "load_mnist_t10k",
    "planar_flower",
    "sha256_of",
    "spirals",
    "split_digits",
    "two_blobs",
]
