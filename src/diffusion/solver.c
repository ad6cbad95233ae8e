/* DPM-Solver++ (2M, 2M SDE, 3M): the coefficients of each step in double from the schedule,
 * and the step itself through the backend's multistep_step. */
#include "diffusion/solver.h"

#include <math.h>

#include "core/common.h"

int solver_order(SolverKind k) { return k == SOLVER_DPMPP_3M ? 3 : 2; }

int solver_needs_noise(SolverKind kind, int k, int K) {
    return kind == SOLVER_DPMPP_2M_SDE && k + 1 < K;
}

/* lambda_t = log(alpha_t / sigma_t) = log(abar / (1 - abar)) / 2 of a timestep 0..T-1 */
static double lambda_at(const Schedule *s, int t) {
    double ab = schedule_abar(s, t);
    return 0.5 * (log(ab) - log1p(-ab));
}

MultistepCoefs solver_coefs(const Schedule *s, SolverKind kind, const int *ts, int k, int K,
                            int clip) {
    DDPM_CHECK(k >= 0 && k < K);
    const int s0 = ts[k];
    const double ab0 = schedule_abar(s, s0);
    MultistepCoefs c = {.c_x0 = 1.0 / sqrt(ab0), .c_eps = sqrt(1.0 - ab0) / sqrt(ab0), .clip = clip};
    if (k == K - 1) { /* to the clean image: sigma_t = 0, h infinite: x_t = m0 */
        c.w0 = 1.0;
        return c;
    }
    int order = solver_order(kind);
    if (order > k + 1) order = k + 1;
    if (order > K - k) order = K - k;
    const int t = ts[k + 1];
    const double ab = schedule_abar(s, t), alpha_t = sqrt(ab), sigma_t = sqrt(1.0 - ab);
    const double sigma_s0 = sqrt(1.0 - ab0);
    const double l0 = lambda_at(s, s0), h = lambda_at(s, t) - l0;
    const double r0 = order >= 2 ? (l0 - lambda_at(s, ts[k - 1])) / h : 0.0;
    const double em = exp(-h);
    if (kind == SOLVER_DPMPP_2M_SDE) {
        const double psi = alpha_t * -expm1(-2.0 * h);
        c.a = sigma_t / sigma_s0 * em;
        c.s = sigma_t * sqrt(-expm1(-2.0 * h));
        c.w0 = psi;
        if (order >= 2) {
            c.w0 += 0.5 * psi / r0;
            c.w1 = -0.5 * psi / r0;
        }
        return c;
    }
    const double phi1 = alpha_t * -expm1(-h);
    c.a = sigma_t / sigma_s0;
    c.w0 = phi1;
    if (order == 2) {
        c.w0 += 0.5 * phi1 / r0;
        c.w1 = -0.5 * phi1 / r0;
    } else if (order == 3) {
        /* x += phi2 D1 - phi3 D2 with D1 = (1 + r0 q) d0 - r0 q d1, D2 = q (d0 - d1),
         * d0 = (m0 - m1) / r0, d1 = (m1 - m2) / r1, q = 1 / (r0 + r1) */
        const double r1 = (lambda_at(s, ts[k - 1]) - lambda_at(s, ts[k - 2])) / h;
        const double q = 1.0 / (r0 + r1);
        const double phi2 = alpha_t * (expm1(-h) / h + 1.0);
        const double phi3 = alpha_t * ((expm1(-h) + h) / (h * h) - 0.5);
        const double A = phi2 * (1.0 + r0 * q) - phi3 * q; /* weight of d0 */
        const double B = -phi2 * r0 * q + phi3 * q;        /* weight of d1 */
        c.w0 += A / r0;
        c.w1 = -A / r0 + B / r1;
        c.w2 = -B / r1;
    }
    return c;
}

void solver_chain_step(const OpsCtx *ctx, const Schedule *s, const SolverChain *c, int k,
                       float *x, const float *eps, const float *z) {
    MultistepCoefs co = solver_coefs(s, c->kind, c->ts, k, c->K, c->clip);
    float *m0 = c->m[k % 3];
    const float *m1 = co.w1 != 0.0 ? c->m[(k + 2) % 3] : NULL;
    const float *m2 = co.w2 != 0.0 ? c->m[(k + 1) % 3] : NULL;
    DDPM_CHECK(!solver_needs_noise(c->kind, k, c->K) || z);
    multistep_step(ctx, x, m0, x, eps, m1, m2, co.s != 0.0 ? z : NULL, &co, c->count);
}
