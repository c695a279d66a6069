"""Programming algorithms for progsim, each a plug-in of the entry-point group
``"progsim.algorithms"``; they use only progsim's public API.

==================  ==========================================================
key                 object
==================  ==========================================================
gdp                 :class:`algorithms.gdp.GDP`
gdp-batched         :class:`algorithms.gdp.GDPBatched`
svd                 :class:`algorithms.svd.SVD`
svd-hs              :class:`algorithms.svd.SVDHalfSelect`
write-verify        :class:`algorithms.writeverify.WriteVerify`
one-shot            :class:`algorithms.oneshot.OneShot`
kalman-gdp          :class:`algorithms.kalman.Kalman` around ``GDP``
kalman-gdp-batched  :class:`algorithms.kalman.Kalman` around ``GDPBatched``
kalman-svd          :class:`algorithms.kalman.Kalman` around ``SVD``
kalman-svd-hs       :class:`algorithms.kalman.Kalman` around ``SVDHalfSelect``
==================  ==========================================================

Importing this package also registers them with :func:`progsim.program.register`, so
they are found where the distribution's entry points are not installed (a source tree).
"""

from algorithms.gdp import GDP, GDPBatched
from algorithms.kalman import Kalman, kalman_gdp, kalman_gdp_batched, kalman_svd, kalman_svd_hs
from algorithms.oneshot import OneShot
from algorithms.svd import SVD, SVDHalfSelect
from algorithms.writeverify import WriteVerify
from progsim.program import register

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
