"""Make a regular Gallager (n, p, q) LDPC parity-check matrix in gr-fec's encoder form (alist).

How ``baseline/ldpc_matrices/*.alist`` were made (rates 2/3 and 3/4, which GNU Radio does not
ship)::

    python -m semcom.baseline.gen_ldpc_matrix 1800 3 9 2    # -> n_1800_k_1202_gap_10.alist
    python -m semcom.baseline.gen_ldpc_matrix 1800 3 12 2   # -> n_1800_k_1352_gap_07.alist
    python -m semcom.baseline.gen_ldpc_matrix 360 3 9 2     # -> n_0360_k_0242_gap_01.alist
    python -m semcom.baseline.gen_ldpc_matrix 360 3 12 3    # -> n_0360_k_0272_gap_01.alist

The matrix construction (one band of q consecutive ones per row, p - 1 column-permuted copies)
is done here because gr-fec 3.10.5's ``LDPC_matrix`` constructor is broken under Python 3
(missing numpy imports, float division). Full rank and the approximate-lower-triangular search
with the gap the ``ldpc_par_mtrx_encoder`` needs are gr-fec's own
``Generate_LDPC_matrix_functions`` (patched with the numpy names it forgets to import).
The seed is fixed per (n, q) so the output is reproducible; minutes for n = 1800.
"""

from __future__ import annotations

import sys

import numpy as np


def gallager(n: int, p: int, q: int, rng: np.random.Generator) -> np.ndarray:
    """Regular (n, p, q) Gallager parity-check matrix; int [n * p / q, n]."""
    if n % q:
        raise ValueError(f"n={n} must be a multiple of the row weight q={q}")
    band = np.zeros((n // q, n), dtype=int)
    for r in range(n // q):
        band[r, r * q:(r + 1) * q] = 1
    return np.vstack([band] + [band[:, rng.permutation(n)] for _ in range(p - 1)])


def main(argv: list[str]) -> int:
    import gnuradio.fec.LDPC.Generate_LDPC_matrix_functions as G
    for name in ("linalg", "zeros", "vstack", "array", "hstack", "eye", "dot", "identity", "zeros_like", "concatenate"):
        setattr(G, name, getattr(np, name))
    n, p, q, iters = (int(v) for v in argv)
    H = G.get_full_rank_H_matrix(gallager(n, p, q, np.random.default_rng(1234 + n + q)))
    best, gap = G.get_best_matrix(H, iters)
    k = best.shape[1] - best.shape[0]
    name = "n_%04i_k_%04i_gap_%02i.alist" % (best.shape[1], k, gap)
    G.write_alist_file(name, best)
    print(name, "rate", round(k / best.shape[1], 4))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
