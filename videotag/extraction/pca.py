"""PCA with whitening, as YT8M reduces frame features: fit, apply, save, load.

    y = (x - mean) @ eigenvecs / sqrt(eigenvals + 1e-4)

with the eigenvectors as columns [D, K] and the K largest eigenvalues of the
features' covariance, descending. Without eigenvalues (VGGish's released PCA) there
is no whitening: y = (x - mean) @ eigenvecs. Values are then clipped to [-2, 2] and
quantized (`videotag.data.schema.quantize`).

Files (`save` writes, `load` reads), the layout of the YT8M release (`yt8m_pca.tgz`):
    mean.npy       [D, 1] (a flat [D] is accepted too)
    eigenvecs.npy  [K, D]: one eigenvector per ROW (YT8M: [2048, 2048]); a [D, K]
                   matrix with eigenvectors as columns is accepted when D != K
    eigenvals.npy  [K, 1] (or flat [K]); optional
Only the first K' rows/values are used when the record's feature size K' < K. A
VGGish `vggish_pca_params.npz` (`pca_eigen_vectors` [128, 128] rows, `pca_means`
[128, 1]) loads too, without whitening, as VGGish post-processes its embeddings.
The files may be on any file system of TensorFlow (`videotag.files`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np

from videotag import files
from videotag.errors import ConfigError, DataError

EPSILON = 1e-4
FILES = ("mean.npy", "eigenvecs.npy", "eigenvals.npy")


class Pca:
    """A fitted PCA (+ whitening) transform.

    Args:
        mean: [D] feature mean.
        eigenvecs: [D, K] eigenvectors as columns, largest eigenvalue first.
        eigenvals: [K] eigenvalues (descending), or None for no whitening.
    """

    def __init__(self, mean: np.ndarray, eigenvecs: np.ndarray,
                 eigenvals: Optional[np.ndarray] = None):
        self.mean = np.asarray(mean, np.float64).reshape(-1)
        self.eigenvecs = np.asarray(eigenvecs, np.float64)
        self.eigenvals = None if eigenvals is None else np.asarray(eigenvals, np.float64).reshape(-1)
        d, k = self.eigenvecs.shape
        if d != self.mean.shape[0] or (self.eigenvals is not None and self.eigenvals.shape[0] != k):
            raise ValueError(f"PCA shapes disagree: mean {self.mean.shape}, eigenvecs "
                             f"{self.eigenvecs.shape}, eigenvals "
                             f"{None if self.eigenvals is None else self.eigenvals.shape}")
        scale = 1.0 if self.eigenvals is None else 1.0 / np.sqrt(self.eigenvals + EPSILON)
        # one matrix: (x - mean) @ (V * scale), in float32 for speed
        self._matrix = (self.eigenvecs * scale).astype(np.float32)
        self._mean32 = self.mean.astype(np.float32)

    @property
    def input_dim(self) -> int:
        return self.eigenvecs.shape[0]

    @property
    def output_dim(self) -> int:
        return self.eigenvecs.shape[1]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """[N, D] -> [N, K] float32."""
        return (np.asarray(features, np.float32) - self._mean32) @ self._matrix

    def truncate(self, k: int) -> "Pca":
        """The first k components."""
        vals = None if self.eigenvals is None else self.eigenvals[:k]
        return Pca(self.mean, self.eigenvecs[:, :k], vals)

    def save(self, folder: str | Path) -> None:
        """Writes mean.npy [D, 1], eigenvecs.npy [K, D], eigenvals.npy [K, 1]."""
        arrays = {"mean.npy": self.mean.reshape(-1, 1), "eigenvecs.npy": self.eigenvecs.T}
        if self.eigenvals is not None:
            arrays["eigenvals.npy"] = self.eigenvals.reshape(-1, 1)
        for name, array in arrays.items():
            data = io.BytesIO()
            np.save(data, array.astype(np.float32))
            files.write_bytes(files.join(str(folder), name), data.getvalue(), what="PCA file")

    @classmethod
    def load(cls, path: str | Path, input_dim: int, output_dim: int) -> "Pca":
        """Loads a PCA folder (or VGGish .npz) for `input_dim` -> `output_dim` features.

        Raises:
            ConfigError: files missing, or shapes that do not fit the dimensions.
        """
        where = str(path)
        if where.endswith(".npz"):
            if not _exists(where):
                raise ConfigError(f"PCA file not found: {where}")
            with np.load(_read(where)) as params:
                if "pca_eigen_vectors" not in params or "pca_means" not in params:
                    raise ConfigError(f"{where}: expected arrays 'pca_eigen_vectors' and "
                                      f"'pca_means', found {sorted(params.files)}")
                mean, vecs, vals = params["pca_means"], params["pca_eigen_vectors"], None
        else:
            mean_file, vecs_file, vals_file = (files.join(where, name) for name in FILES)
            if not _exists(mean_file) or not _exists(vecs_file):
                raise ConfigError(f"PCA folder {where} must hold mean.npy and eigenvecs.npy "
                                  "(fit one with videotag extract --fit_pca)")
            mean = np.load(_read(mean_file))
            vecs = np.load(_read(vecs_file))
            vals = np.load(_read(vals_file)) if _exists(vals_file) else None
        mean = np.asarray(mean).reshape(-1)
        if mean.shape[0] != input_dim:
            raise ConfigError(f"{where}: the PCA mean has {mean.shape[0]} values, the network "
                              f"gives {input_dim}-d features")
        if vecs.ndim != 2 or input_dim not in vecs.shape:
            raise ConfigError(f"{where}: eigenvecs of shape {vecs.shape} do not fit "
                              f"{input_dim}-d features")
        columns = vecs.T if vecs.shape[1] == input_dim else vecs  # rows: the YT8M layout
        if columns.shape[1] < output_dim:
            raise ConfigError(f"{where}: {columns.shape[1]} components, the records need "
                              f"{output_dim}")
        if vals is not None:
            vals = np.asarray(vals).reshape(-1)
            if vals.shape[0] < output_dim:
                raise ConfigError(f"{where}: {vals.shape[0]} eigenvalues, the records need "
                                  f"{output_dim}")
            vals = vals[:output_dim]
        return cls(mean, columns[:, :output_dim], vals)


def _exists(path: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def _read(path: str) -> io.BytesIO:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        return io.BytesIO(f.read())


class PcaFitter:
    """Streams features in and fits a PCA: memory is D x D, whatever the frame count."""

    def __init__(self, dim: int):
        self.dim = dim
        self.count = 0
        self._sum = np.zeros(dim, np.float64)
        self._outer = np.zeros((dim, dim), np.float64)

    def add(self, features: np.ndarray) -> None:
        """Adds frames [N, D]."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features [N, {self.dim}], got {x.shape}")
        self.count += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    def fit(self, num_components: int) -> Pca:
        """The PCA of the frames added so far, keeping `num_components` components.

        Eigenvectors get a fixed sign (largest-magnitude entry positive) so a refit
        on the same data gives the same files.

        Raises:
            DataError: fewer than 2 frames were added.
            ConfigError: more components than feature dimensions.
        """
        if self.count < 2:
            raise DataError(f"PCA needs at least 2 frames, got {self.count}")
        if num_components > self.dim:
            raise ConfigError(f"PCA cannot make {num_components} components from "
                              f"{self.dim}-d features: set extraction key 'feature_sizes' "
                              f"to at most {self.dim}")
        mean = self._sum / self.count
        cov = (self._outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(vals)[::-1][:num_components]
        vals, vecs = np.maximum(vals[order], 0.0), vecs[:, order]
        signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
        return Pca(mean, vecs * np.where(signs == 0, 1.0, signs), vals)
