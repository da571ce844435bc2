"""The convex baseline of Demirhan & Alkhateeb: the policies (:mod:`~policies.convex.policies`:
``cvx``, ``ns-opt``, ``cb-opt``), the max-min SINR SOCP bisection (:mod:`~policies.convex.socp`),
the joint SDP (:mod:`~policies.convex.sdp`, :mod:`~policies.convex.ipm`), the reduced basis
(:mod:`~policies.convex.basis`) and the SSNR/min-SINR frontier (:mod:`~policies.convex.frontier`).
"""
