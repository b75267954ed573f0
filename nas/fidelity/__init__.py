"""Proxy fidelity: does a study's short proxy rank networks the way a longer training ranks them?

:func:`proxy_check` trains specs of a study's space with candidate proxy lengths and one long schedule, on the
study's own executors, and reports Kendall's tau between the rankings (``nas proxy check``).
"""

from nas.fidelity._proxy_check import FOLDER as PROXY_CHECK_FOLDER
from nas.fidelity._proxy_check import FidelityRow, ProxyCheckReport, TauEstimate, kendall, proxy_check, spread_specs

__all__ = ["proxy_check", "ProxyCheckReport", "FidelityRow", "TauEstimate", "kendall", "spread_specs",
           "PROXY_CHECK_FOLDER"]
