/* Fused kernels of the polynomial method (chapter 4): features are generated in cache-sized tiles and multiplied at
 * once, so the L x r feature matrices are never written to memory.  Built and loaded by dit_lib/native.py.
 *
 * Arithmetic (the rounding analysis of dit_lib.polynomial.accumulation_length counts on it):
 *   - a monomial is built by the recipe of dit_lib.attention._layout: prefix * x_i, g - 1 products in float32;
 *   - every float32 sum has at most G (= SUM_GROUP) terms; partial sums are added in float64;
 *   - products may be fused (FMA: one rounding instead of two).  No reassociation flags are used.
 *
 * keys_kernel:    MT[c, a] += sum_k V1[k, c] * phi_a(x_k)   (C x r, float64)
 * queries_kernel: out[c, q] = sum_a M[a, c] * phi_a(x_q)     (C x n, float64)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define W 16                       /* lanes of one vector (AVX-512; compilers split it elsewhere) */
#define CT 16                      /* at most this many output columns per register tile */
typedef float vf __attribute__((vector_size(W * sizeof(float))));

static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* Features of one point, a-major: f[0] = 1, then every recipe step f[dst + t] = f[src + t] * x[i]. */
static inline void features_one(float *f, const float *x, const int32_t *steps, int nsteps)
{
    f[0] = 1.0f;
    for (int s = 0; s < nsteps; s++) {
        const int32_t *st = steps + 4 * s;
        const float xi = x[st[0]];
        const float *src = f + st[1];
        float *dst = f + st[2];
        const int cnt = st[3];
        for (int t = 0; t < cnt; t++) dst[t] = src[t] * xi;
    }
}

/* One register tile of the key side: for every group of W features, acc[c] = sum_k v[k, c] * phi[k, a..a+W)
 * over the nk keys of the tile, added to m32[c, a..a+W).  nc <= CT columns. */
#define KEY_TILE(NC)                                                                                      \
    static void key_tile_##NC(const float *phi, int rpad, int nk, const float *v, int ldv, float *m32)     \
    {                                                                                                      \
        for (int a = 0; a < rpad; a += W) {                                                                \
            vf acc[NC];                                                                                    \
            for (int c = 0; c < NC; c++) acc[c] = (vf){0};                                                 \
            for (int k = 0; k < nk; k++) {                                                                 \
                const vf p = vload(phi + (size_t)k * rpad + a);                                            \
                const float *vk = v + (size_t)k * ldv;                                                     \
                for (int c = 0; c < NC; c++) acc[c] += vk[c] * p;                                          \
            }                                                                                              \
            for (int c = 0; c < NC; c++) vstore(m32 + (size_t)c * rpad + a,                                \
                                                vload(m32 + (size_t)c * rpad + a) + acc[c]);               \
        }                                                                                                  \
    }

/* One register tile of the query side: acc[c] (W queries) = sum over a group of <= G features of m[a, c] * phi[a],
 * groups added in float64 into tot. */
typedef double vd __attribute__((vector_size(W * sizeof(double))));
#define QUERY_TILE(NC)                                                                                     \
    static void query_tile_##NC(const float *phi, int r, int G, const float *m, int ldm, double *tot)     \
    {                                                                                                      \
        vd sum[NC];                                                                                        \
        for (int c = 0; c < NC; c++) sum[c] = (vd){0};                                                     \
        for (int a0 = 0; a0 < r; a0 += G) {                                                                \
            const int a1 = a0 + G < r ? a0 + G : r;                                                        \
            vf acc[NC];                                                                                    \
            for (int c = 0; c < NC; c++) acc[c] = (vf){0};                                                 \
            for (int a = a0; a < a1; a++) {                                                                \
                const vf p = vload(phi + (size_t)a * W);                                                   \
                const float *ma = m + (size_t)a * ldm;                                                     \
                for (int c = 0; c < NC; c++) acc[c] += ma[c] * p;                                          \
            }                                                                                              \
            for (int c = 0; c < NC; c++) sum[c] += __builtin_convertvector(acc[c], vd);                    \
        }                                                                                                  \
        memcpy(tot, sum, sizeof sum);                                                                      \
    }

#define TILES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
TILES(KEY_TILE)
TILES(QUERY_TILE)

typedef void (*key_tile_fn)(const float *, int, int, const float *, int, float *);
typedef void (*query_tile_fn)(const float *, int, int, const float *, int, double *);
#define KPTR(N) key_tile_##N,
#define QPTR(N) query_tile_##N,
static const key_tile_fn key_tiles[CT] = {TILES(KPTR)};
static const query_tile_fn query_tiles[CT] = {TILES(QPTR)};

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Key side over keys [0, n): X (n x d), V1 (n x C), both float32 row-major; MT (C x r) float64, accumulated.
 * Keys go in groups of G (the float32 sums), each group in sub-blocks of S keys whose features fit in cache.
 * Returns 0, or -1 if memory could not be allocated. */
int keys_kernel(const float *X, const float *V1, int64_t n, int d, int C, const int32_t *steps, int nsteps, int r,
                int G, int S, double *MT)
{
    const int rpad = round_up(r, W);
    float *phi = aligned_alloc(64, (size_t)S * rpad * sizeof(float));
    float *m32 = aligned_alloc(64, (size_t)C * rpad * sizeof(float));
    if (!phi || !m32) { free(phi); free(m32); return -1; }
    for (int64_t g0 = 0; g0 < n; g0 += G) {
        const int64_t g1 = g0 + G < n ? g0 + G : n;
        memset(m32, 0, (size_t)C * rpad * sizeof(float));
        for (int64_t s0 = g0; s0 < g1; s0 += S) {
            const int nk = (int)(s0 + S < g1 ? S : g1 - s0);
            for (int k = 0; k < nk; k++) {
                float *f = phi + (size_t)k * rpad;
                features_one(f, X + (size_t)(s0 + k) * d, steps, nsteps);
                for (int a = r; a < rpad; a++) f[a] = 0.0f;
            }
            for (int c0 = 0; c0 < C; c0 += CT) {
                const int nc = C - c0 < CT ? C - c0 : CT;
                key_tiles[nc - 1](phi, rpad, nk, V1 + (size_t)s0 * C + c0, C, m32 + (size_t)c0 * rpad);
            }
        }
        for (int c = 0; c < C; c++)
            for (int a = 0; a < r; a++) MT[(size_t)c * r + a] += (double)m32[(size_t)c * rpad + a];
    }
    free(phi);
    free(m32);
    return 0;
}

/* Query side over queries [0, n): X (n x d) float32, M (r x C) float32; out (C x ldo) float64, columns [0, n).
 * W queries at a time: their features (a-major, W lanes) stay in cache. */
int queries_kernel(const float *X, int64_t n, int d, const float *M, int C, const int32_t *steps, int nsteps, int r,
                   int G, double *out, int64_t ldo)
{
    float *phi = aligned_alloc(64, (size_t)r * W * sizeof(float));
    float *xs = aligned_alloc(64, (size_t)d * W * sizeof(float));
    double *tot = aligned_alloc(64, (size_t)CT * W * sizeof(double));
    if (!phi || !xs || !tot) { free(phi); free(xs); free(tot); return -1; }
    for (int64_t q0 = 0; q0 < n; q0 += W) {
        const int nq = (int)(q0 + W < n ? W : n - q0);
        for (int i = 0; i < d; i++)
            for (int l = 0; l < W; l++) xs[i * W + l] = l < nq ? X[(size_t)(q0 + l) * d + i] : 0.0f;
        vstore(phi, (vf){0} + 1.0f);
        for (int s = 0; s < nsteps; s++) {
            const int32_t *st = steps + 4 * s;
            const vf xi = vload(xs + st[0] * W);
            const float *src = phi + (size_t)st[1] * W;
            float *dst = phi + (size_t)st[2] * W;
            for (int t = 0; t < st[3]; t++) vstore(dst + (size_t)t * W, vload(src + (size_t)t * W) * xi);
        }
        for (int c0 = 0; c0 < C; c0 += CT) {
            const int nc = C - c0 < CT ? C - c0 : CT;
            query_tiles[nc - 1](phi, r, G, M + c0, C, tot);
            for (int c = 0; c < nc; c++)
                for (int l = 0; l < nq; l++) out[(size_t)(c0 + c) * ldo + q0 + l] = tot[c * W + l];
        }
    }
    free(phi);
    free(xs);
    free(tot);
    return 0;
}
