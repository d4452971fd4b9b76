/* One working precision of the fused kernels, included by polyattn.c with T (float or double), W (lanes of a 64-byte
 * vector) and SFX (the name suffix) defined. */
#define N(name) CAT(name, SFX)
#define VT CAT(vt, SFX)
#define VD CAT(vd, SFX)
typedef T VT __attribute__((vector_size(W * sizeof(T))));
typedef double VD __attribute__((vector_size(W * sizeof(double))));

static inline VT N(vload)(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; }
static inline void N(vstore)(T *p, VT v) { memcpy(p, &v, sizeof v); }

/* Features of one point, a-major: f[0] = 1, then every recipe step f[dst + t] = f[src + t] * x[i]. */
static inline void N(features_one)(T *f, const T *x, const int32_t *steps, int nsteps)
{
    f[0] = 1.0f;
    for (int s = 0; s < nsteps; s++) {
        const int32_t *st = steps + 4 * s;
        const T xi = x[st[0]];
        const T *src = f + st[1];
        T *dst = f + st[2];
        const int cnt = st[3];
        for (int t = 0; t < cnt; t++) dst[t] = src[t] * xi;
    }
}

/* One register tile of the key side: for every group of W features, acc[c] = sum_k v[k, c] * phi[k, a..a+W)
 * over the nk keys of the tile, added to mg[c, a..a+W) (the group's partial sums, in T).  nc <= CT columns. */
#define KEY_TILE(NC)                                                                                               \
    static void CAT(key_tile_##NC, SFX)(const T *phi, int rpad, int nk, const T *v, int ldv, T *mg)                \
    {                                                                                                              \
        for (int a = 0; a < rpad; a += W) {                                                                        \
            VT acc[NC];                                                                                            \
            for (int c = 0; c < NC; c++) acc[c] = (VT){0};                                                         \
            for (int k = 0; k < nk; k++) {                                                                         \
                const VT p = N(vload)(phi + (size_t)k * rpad + a);                                                 \
                const T *vk = v + (size_t)k * ldv;                                                                 \
                for (int c = 0; c < NC; c++) acc[c] += vk[c] * p;                                                  \
            }                                                                                                      \
            for (int c = 0; c < NC; c++) N(vstore)(mg + (size_t)c * rpad + a,                                      \
                                                N(vload)(mg + (size_t)c * rpad + a) + acc[c]);                     \
        }                                                                                                          \
    }

/* One register tile of the query side: acc[c] (W queries) = sum over a group of <= G features of m[a, c] * phi[a],
 * groups added in double into tot. */
#define QUERY_TILE(NC)                                                                                             \
    static void CAT(query_tile_##NC, SFX)(const T *phi, int r, int G, const T *m, int ldm, double *tot)            \
    {                                                                                                              \
        VD sum[NC];                                                                                                \
        for (int c = 0; c < NC; c++) sum[c] = (VD){0};                                                             \
        for (int a0 = 0; a0 < r; a0 += G) {                                                                        \
            const int a1 = a0 + G < r ? a0 + G : r;                                                                \
            VT acc[NC];                                                                                            \
            for (int c = 0; c < NC; c++) acc[c] = (VT){0};                                                         \
            for (int a = a0; a < a1; a++) {                                                                        \
                const VT p = N(vload)(phi + (size_t)a * W);                                                        \
                const T *ma = m + (size_t)a * ldm;                                                                 \
                for (int c = 0; c < NC; c++) acc[c] += ma[c] * p;                                                  \
            }                                                                                                      \
            for (int c = 0; c < NC; c++) sum[c] += __builtin_convertvector(acc[c], VD);                            \
        }                                                                                                          \
        memcpy(tot, sum, sizeof sum);                                                                              \
    }

TILES(KEY_TILE)
TILES(QUERY_TILE)
#undef KEY_TILE
#undef QUERY_TILE

static void (*const N(key_tiles)[CT])(const T *, int, int, const T *, int, T *) = {TILES(KPTR)};
static void (*const N(query_tiles)[CT])(const T *, int, int, const T *, int, double *) = {TILES(QPTR)};

/* Key side over keys [0, n): X (n x d), V1 (n x C), both T, row-major; MT (C x r) double, accumulated.
 * Keys go in groups of G (the sums in T), each group in sub-blocks of S keys whose features fit in cache.
 * Returns 0, or -1 if memory could not be allocated. */
int N(keys_kernel)(const T *X, const T *V1, int64_t n, int d, int C, const int32_t *steps, int nsteps, int r,
                int G, int S, double *MT)
{
    const int rpad = round_up(r, W);
    T *phi = aligned_alloc(64, (size_t)S * rpad * sizeof(T));
    T *mg = aligned_alloc(64, (size_t)C * rpad * sizeof(T));
    if (!phi || !mg) { free(phi); free(mg); return -1; }
    for (int64_t g0 = 0; g0 < n; g0 += G) {
        const int64_t g1 = g0 + G < n ? g0 + G : n;
        memset(mg, 0, (size_t)C * rpad * sizeof(T));
        for (int64_t s0 = g0; s0 < g1; s0 += S) {
            const int nk = (int)(s0 + S < g1 ? S : g1 - s0);
            for (int k = 0; k < nk; k++) {
                T *f = phi + (size_t)k * rpad;
                N(features_one)(f, X + (size_t)(s0 + k) * d, steps, nsteps);
                for (int a = r; a < rpad; a++) f[a] = 0.0f;
            }
            for (int c0 = 0; c0 < C; c0 += CT) {
                const int nc = C - c0 < CT ? C - c0 : CT;
                N(key_tiles)[nc - 1](phi, rpad, nk, V1 + (size_t)s0 * C + c0, C, mg + (size_t)c0 * rpad);
            }
        }
        for (int c = 0; c < C; c++)
            for (int a = 0; a < r; a++) MT[(size_t)c * r + a] += (double)mg[(size_t)c * rpad + a];
    }
    free(phi);
    free(mg);
    return 0;
}

/* Query side over queries [0, n): X (n x d) and M (r x C) in T; out (C x ldo) double, columns [0, n).
 * W queries at a time: their features (a-major, W lanes) stay in cache. */
int N(queries_kernel)(const T *X, int64_t n, int d, const T *M, int C, const int32_t *steps, int nsteps, int r,
                   int G, double *out, int64_t ldo)
{
    T *phi = aligned_alloc(64, (size_t)r * W * sizeof(T));
    T *xs = aligned_alloc(64, (size_t)d * W * sizeof(T));
    double *tot = aligned_alloc(64, (size_t)CT * W * sizeof(double));
    if (!phi || !xs || !tot) { free(phi); free(xs); free(tot); return -1; }
    for (int64_t q0 = 0; q0 < n; q0 += W) {
        const int nq = (int)(q0 + W < n ? W : n - q0);
        for (int i = 0; i < d; i++)
            for (int l = 0; l < W; l++) xs[i * W + l] = l < nq ? X[(size_t)(q0 + l) * d + i] : 0.0f;
        N(vstore)(phi, (VT){0} + 1.0f);
        for (int s = 0; s < nsteps; s++) {
            const int32_t *st = steps + 4 * s;
            const VT xi = N(vload)(xs + st[0] * W);
            const T *src = phi + (size_t)st[1] * W;
            T *dst = phi + (size_t)st[2] * W;
            for (int t = 0; t < st[3]; t++) N(vstore)(dst + (size_t)t * W, N(vload)(src + (size_t)t * W) * xi);
        }
        for (int c0 = 0; c0 < C; c0 += CT) {
            const int nc = C - c0 < CT ? C - c0 : CT;
            N(query_tiles)[nc - 1](phi, r, G, M + c0, C, tot);
            for (int c = 0; c < nc; c++)
                for (int l = 0; l < nq; l++) out[(size_t)(c0 + c) * ldo + q0 + l] = tot[c * W + l];
        }
    }
    free(phi);
    free(xs);
    free(tot);
    return 0;
}


/* Batched over H heads (the leading axes of fast attention): head h reads X + h sx, V1 + h sv (or M + h sm) and writes
 * MT + h st (or out + h so); strides in elements.  One call per thread keeps Python out of the loop over heads. */
int N(keys_batch)(const T *X, const T *V1, int64_t H, int64_t n, int d, int C, const int32_t *steps, int nsteps,
                  int r, int G, int S, double *MT, int64_t sx, int64_t sv, int64_t st)
{
    for (int64_t h = 0; h < H; h++) {
        const int rc = N(keys_kernel)(X + h * sx, V1 + h * sv, n, d, C, steps, nsteps, r, G, S, MT + h * st);
        if (rc) return rc;
    }
    return 0;
}

int N(queries_batch)(const T *X, int64_t H, int64_t n, int d, const T *M, int C, const int32_t *steps, int nsteps,
                     int r, int G, double *out, int64_t ldo, int64_t sx, int64_t sm, int64_t so)
{
    for (int64_t h = 0; h < H; h++) {
        const int rc = N(queries_kernel)(X + h * sx, n, d, M + h * sm, C, steps, nsteps, r, G, out + h * so, ldo);
        if (rc) return rc;
    }
    return 0;
}

#undef N
#undef VT
#undef VD
