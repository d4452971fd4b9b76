/* Fused kernels of the polynomial method (chapter 4): features are generated in cache-sized tiles and multiplied at
 * once, so the L x r feature matrices are never written to memory.  Built and loaded by dit_lib/native.py.
 *
 * Arithmetic (the rounding analysis of dit_lib.polynomial.accumulation_length counts on it), in the working precision
 * T (float or double; polyattn_kernels.h is included once for each):
 *   - a monomial is built by the recipe of dit_lib.attention._layout: prefix * x_i, g - 1 products;
 *   - every sum in T has at most G (= SUM_GROUP) terms; partial sums are added in double;
 *   - products may be fused (FMA: one rounding instead of two).  No reassociation flags are used.
 *
 * keys_kernel_<T>:    MT[c, a] += sum_k V1[k, c] * phi_a(x_k)   (C x r, double)
 * queries_kernel_<T>: out[c, q] = sum_a M[a, c] * phi_a(x_q)     (C x n, double)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CT 16                      /* at most this many output columns per register tile */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define TILES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
#define KPTR(n) CAT(key_tile_##n, SFX),
#define QPTR(n) CAT(query_tile_##n, SFX),

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

#define T float
#define W 16                       /* lanes of one 64-byte vector (AVX-512; compilers split it elsewhere) */
#define SFX _f32
#include "polyattn_kernels.h"
#undef T
#undef W
#undef SFX

#define T double
#define W 8
#define SFX _f64
#include "polyattn_kernels.h"
#undef T
#undef W
#undef SFX
