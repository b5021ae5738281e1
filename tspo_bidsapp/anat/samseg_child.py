"""Body of the SAMSEG subprocess: ``python -m tspo_bidsapp.anat.samseg_child [--save-unshaped] ARGS``.

Runs SAMSEG's own command-line entry point (``samseg.cli.run_samseg.main``) in a fresh process, so
that its ``sys.exit`` calls, its threads and its memory stay out of the calling process.

``--save-unshaped`` (lesion mode only) additionally writes ``lesion_posterior_noshape.mgz``: the
lesion posterior of the plain SAMSEG model before the lesion shape model (VAE) is sampled, masked
with SAMSEG's own intensity constraint. It costs nothing extra and lets one measure what the shape
model contributes (Cerri et al., NeuroImage 225:117471, 2021) from a single run.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def _install_unshaped_hook() -> None:
    import samseg.SamsegLesion as lesion_module
    from samseg.Samseg import Samseg

    class _DumpingSamseg(Samseg):
        """Stands in for ``Samseg`` where ``SamsegLesion`` calls its base-class methods unbound."""

        def computeFinalSegmentation(self):  # noqa: N802 (SAMSEG's name)
            result = Samseg.computeFinalSegmentation(self)
            posteriors, data = result[0], result[3]
            keep = np.ones(data.shape[0], dtype=bool)
            if self.intensityMaskingClassNumber is not None:
                first = sum(self.gmm.numberOfGaussiansPerClass[: self.intensityMaskingClassNumber])
                mean = self.gmm.means[first]
                for contrast, direction in enumerate(self.intensityMaskingPattern):
                    if direction == -1:
                        keep &= data[:, contrast] < mean[contrast]
                    elif direction == 1:
                        keep &= data[:, contrast] > mean[contrast]
            volume = np.zeros(self.mask.shape, dtype=np.float32)
            volume[self.mask] = posteriors[:, self.lesionStructureNumber] * keep
            self.writeImage(volume, os.path.join(self.savePath, "lesion_posterior_noshape.mgz"))
            return result

    lesion_module.Samseg = _DumpingSamseg


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--save-unshaped" in args:
        args.remove("--save-unshaped")
        _install_unshaped_hook()
    from samseg.cli import run_samseg

    sys.argv = ["run_samseg", *args]
    run_samseg.main()


if __name__ == "__main__":
    main()
