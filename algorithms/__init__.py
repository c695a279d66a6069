"""Programming algorithms for progsim, each a plug-in of the entry-point group
``"progsim.algorithms"``; they use only progsim's public API.

The folder ``algorithms/`` installs as the package ``progsim_algorithms`` (imports inside
it are relative, so it works under either name). Every option left at its default derives
from the tile's nominal configuration (see each class), and each class suggests the run
length :func:`progsim.program` gives it when no ``max_iter`` is passed (its ``max_iter``).

==================  ==========================================================
key                 object
==================  ==========================================================
gdp                 :class:`progsim_algorithms.gdp.GDP`
gdp-batched         :class:`progsim_algorithms.gdp.GDPBatched`
svd                 :class:`progsim_algorithms.svd.SVD`
svd-hs              :class:`progsim_algorithms.svd.SVDHalfSelect`
write-verify        :class:`progsim_algorithms.writeverify.WriteVerify`
one-shot            :class:`progsim_algorithms.oneshot.OneShot`
kalman-gdp          :class:`progsim_algorithms.kalman.Kalman` around ``GDP``
kalman-gdp-batched  :class:`progsim_algorithms.kalman.Kalman` around ``GDPBatched``
kalman-svd          :class:`progsim_algorithms.kalman.Kalman` around ``SVD``
kalman-svd-hs       :class:`progsim_algorithms.kalman.Kalman` around ``SVDHalfSelect``
==================  ==========================================================

Importing this package also registers them with :func:`progsim.programming.register`, so
they are found where the distribution's entry points are not installed (a source tree).
"""

from .gdp import GDP, GDPBatched
from .kalman import Kalman, kalman_gdp, kalman_gdp_batched, kalman_svd, kalman_svd_hs
from .oneshot import OneShot
from .svd import SVD, SVDHalfSelect
from .writeverify import WriteVerify
from progsim.programming import register

BUILTIN = {
    "gdp": GDP,
    "gdp-batched": GDPBatched,
    "svd": SVD,
    "svd-hs": SVDHalfSelect,
    "write-verify": WriteVerify,
    "one-shot": OneShot,
    "kalman-gdp": kalman_gdp,
    "kalman-gdp-batched": kalman_gdp_batched,
    "kalman-svd": kalman_svd,
    "kalman-svd-hs": kalman_svd_hs,
}

for _key, _factory in BUILTIN.items():
    register(_key, _factory)

__all__ = ["BUILTIN", "GDP", "GDPBatched", "Kalman", "OneShot", "SVD", "SVDHalfSelect", "WriteVerify"]
